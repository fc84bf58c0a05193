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
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class TLS:
    """Serve HTTPS: a certificate chain and its key; with ``client_ca``, clients must present a
    certificate signed by it (mutual TLS)."""

    certfile: str
    keyfile: str
    client_ca: str | None = None


def config(sock: socket.socket, read_timeout_s: float = 30.0, graceful_timeout_s: float = 5.0, *,
           keep_alive_s: float = 5.0, tls: TLS | None = None, http1_only: bool = False) -> Config:
    """Hypercorn settings around ``sock``.

    ``keep_alive_s`` also bounds the whole header block: hypercorn's idle timer runs from the
    connection's start until a request's headers are complete, and is not reset by partial
    header bytes, so a client trickling headers byte by byte is closed after it.
    """
    cfg = Config()
    cfg.bind = [f"fd://{sock.fileno()}"]
    cfg.read_timeout = float(read_timeout_s) if read_timeout_s else None
    cfg.keep_alive_timeout = keep_alive_s
    cfg.graceful_timeout = graceful_timeout_s
    cfg.h11_max_incomplete_size = 16 * 1024  # request line and headers
    cfg.backlog = 1024  # asyncio re-listens with this; hypercorn's 100 drops SYNs under a burst
    cfg.accesslog = None
    cfg.errorlog = "-"
    cfg.loglevel = "WARNING"
    if http1_only:
        cfg.alpn_protocols = ["http/1.1"]
    if tls is not None:
        cfg.certfile, cfg.keyfile = tls.certfile, tls.keyfile  # (what makes hypercorn serve TLS)
        cfg.ssl_handshake_timeout = max(keep_alive_s, 1.0)
        # Loaded now, not when serving starts: a bad certificate fails here, and a key in a
        # temporary file (an env: reference) can be removed as soon as this returns.
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.set_ciphers(cfg.ciphers)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION
        ctx.set_alpn_protocols(cfg.alpn_protocols)
        ctx.load_cert_chain(tls.certfile, tls.keyfile)
        if tls.client_ca:
            ctx.load_verify_locations(tls.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        cfg.create_ssl_context = lambda: ctx
    return cfg


def run(app, sock: socket.socket, read_timeout_s: float = 30.0, should_stop: Callable[[], bool] | None = None,
        **options) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM / SIGINT (or ``should_stop()`` turns true);
    ``options`` go to :func:`config`."""

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
        await _serve(app, config(sock, read_timeout_s, **options), shutdown_trigger=stop.wait)
        watcher.cancel()

    asyncio.run(main())


async def serve(app, cfg: Config, shutdown_trigger: Callable) -> None:
    """Serve ``app`` with ``cfg`` (from :func:`config`) in the running event loop until
    ``await shutdown_trigger()`` returns: for callers that own their loop (the webhook receiver)."""
    await _serve(app, cfg, shutdown_trigger=shutdown_trigger)


class Background:
    """The app served from a thread with its own event loop (tests, ``sre-llm serve`` from Python)."""

    def __init__(self, app, sock: socket.socket, read_timeout_s: float = 30.0, **options):
        self.sock = sock
        scheme = "https" if options.get("tls") else "http"
        self.url = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        ready = threading.Event()

        def target() -> None:
            asyncio.set_event_loop(self._loop)

            async def main() -> None:
                self._stop = asyncio.Event()
                ready.set()
                await _serve(app, config(sock, read_timeout_s, **options), shutdown_trigger=self._stop.wait)

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
