"""The one server module: an ASGI app on hypercorn, for the gateway and the webhook receiver.

Why hypercorn: its ``read_timeout`` bounds every read of a connection (a client that stops
sending headers or body is dropped after it), and ``h11_max_incomplete_size`` bounds the header
block; uvicorn's ``timeout_keep_alive`` only covers idle keep-alive connections, not a slow header
or body. Note: the timeout is per read, so a client trickling a byte every few seconds is bounded
by the app's own body limit and request timeout (:class:`sre_llm.serve.app.Limits`), not by it.

The socket is bound by the caller (:func:`bind`) so that a busy port fails at once, before
anything slow (vLLM loading a model) starts.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Callable

from hypercorn.asyncio import serve as _serve
from hypercorn.config import Config


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def config(sock: socket.socket, read_timeout_s: float = 30.0, graceful_timeout_s: float = 5.0) -> Config:
    cfg = Config()
    cfg.bind = [f"fd://{sock.fileno()}"]
    cfg.read_timeout = int(read_timeout_s) if read_timeout_s else None
    cfg.keep_alive_timeout = 5.0
    cfg.graceful_timeout = graceful_timeout_s
    cfg.h11_max_incomplete_size = 16 * 1024  # request line and headers
    cfg.accesslog = None
    cfg.errorlog = "-"
    cfg.loglevel = "WARNING"
    return cfg


def run(app, sock: socket.socket, read_timeout_s: float = 30.0, should_stop: Callable[[], bool] | None = None) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM / SIGINT (or ``should_stop()`` turns true)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def watch() -> None:
            while should_stop is not None and not stop.is_set():
                if should_stop():
                    stop.set()
                await asyncio.sleep(0.5)

        watcher = asyncio.create_task(watch())
        await _serve(app, config(sock, read_timeout_s), shutdown_trigger=stop.wait)
        watcher.cancel()

    asyncio.run(main())


class Background:
    """The app served from a thread with its own event loop (tests, ``sre-llm serve`` from Python)."""

    def __init__(self, app, sock: socket.socket, read_timeout_s: float = 30.0):
        self.sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        ready = threading.Event()

        def target() -> None:
            asyncio.set_event_loop(self._loop)

            async def main() -> None:
                self._stop = asyncio.Event()
                ready.set()
                await _serve(app, config(sock, read_timeout_s), shutdown_trigger=self._stop.wait)

            self._loop.run_until_complete(main())

        self._thread = threading.Thread(target=target, name="sre-llm-gateway", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)
        try:
            self.sock.close()
        except OSError:  # hypercorn took the descriptor over and closed it
            pass
