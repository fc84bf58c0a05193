"""Alertmanager webhook receiver (``sre-llm collect serve``) and reader of what it stored.

Durability contract: a payload is appended to ``<store>/webhook.jsonl`` and fsync'd *before* the
receiver answers 200 (concurrent payloads share one fsync: :mod:`sre_llm.collect.journal`). If
it cannot store (disk full, permissions, anything), it answers 503 and Alertmanager retries. So a
payload that got a 200 survives a SIGKILL of the receiver a moment later; one that did not is
re-sent. A payload cut short by a crash mid-write was never acknowledged; the reader quarantines
that partial last line.

The app is :class:`sre_llm.collect.receiver.Receiver` (limits, schema, answers); it runs on the
house's one server module, :mod:`sre_llm.serve.server` (hypercorn). :func:`make_server` keeps the
``serve_forever`` / ``shutdown`` / ``server_close`` shape of the stdlib server it replaced.

Each stored line: ``{"received": "<RFC 3339>", "payload": <the webhook body>}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sre_llm.dataset.records import Quarantined, webhook_alerts
from sre_llm.errors import BadInput

if TYPE_CHECKING:  # the server stack is imported by the serving code only, not by read_store's callers
    from sre_llm.collect.receiver import Limits, Receiver

STORE_FILE = "webhook.jsonl"


class ReceiverServer:
    """A bound receiver; ``serve_forever()`` serves it in the calling thread (SIGTERM / SIGINT stop
    it when that is the main thread), ``shutdown()`` from another thread stops it."""

    def __init__(self, app: Receiver, sock: socket.socket, cfg, tls: bool):
        self.app, self.socket, self.config = app, sock, cfg
        self.server_address = sock.getsockname()[:2]
        self.url = f"{'https' if tls else 'http'}://{self.server_address[0]}:{self.server_address[1]}/"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started, self._done = threading.Event(), threading.Event()
        self._served = False

    def serve_forever(self, poll_interval: float | None = None) -> None:  # poll_interval: the old signature
        """Serve until :meth:`shutdown`, SIGTERM or SIGINT."""
        self._served = True
        try:
            asyncio.run(self._main())
        finally:
            self._done.set()

    async def _main(self) -> None:
        from sre_llm.serve import server as _server

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stop.set)
        self._started.set()
        await _server.serve(self.app, self.config, self._stop.wait)

    def shutdown(self) -> None:
        """Stop serving (from another thread) and wait until it has."""
        if self._started.wait(10) and not self._done.is_set():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._done.wait(15)

    def server_close(self) -> None:
        if self._served:
            self.socket.detach()  # hypercorn closed the descriptor; closing it again could hit a reused one
        else:
            self.socket.close()


def make_server(
    store: str | Path, listen: str, token: str | None = None, tls_cert: str | None = None,
    tls_key_file: str | None = None, log: callable | None = None, *, tls_client_ca: str | None = None,
    read_timeout_s: float = 10.0, limits: Limits | None = None, outcome_window_s: float = 1800.0,
    outcome_grace_s: float = 300.0, rollout_spec: str | None = None,
) -> ReceiverServer:
    """A ready (bound) receiver; call ``serve_forever()``. ``listen`` is ``host:port`` (port 0 = any).

    ``read_timeout_s`` bounds the header block (from the connection's start), each read, an idle
    keep-alive connection, and (unless ``limits`` says otherwise) the whole body. Certificates
    are loaded here: a key file may be removed once this returns. ``rollout_spec``: a spec file whose
    rollout Flagger's webhooks judge (:mod:`sre_llm.deploy.gates`).
    """
    import ssl

    from sre_llm.collect.receiver import Limits, Receiver
    from sre_llm.serve import server as _server

    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise BadInput(f"listen {listen!r}: expected host:port")
    tls = None
    if tls_cert:
        if not tls_key_file:
            raise BadInput("tls_cert needs tls_key")
        tls = _server.TLS(tls_cert, tls_key_file, tls_client_ca)
    elif tls_client_ca:
        raise BadInput("tls_client_ca needs tls_cert and tls_key")
    try:
        sock = _server.bind(host.strip("[]") or "127.0.0.1", int(port))
    except OSError as exc:
        raise BadInput(f"listen {listen}: {exc.strerror or exc}") from None
    try:
        # Per read: a backstop, twice the body deadline, so a stalled body gets the app's 408 first.
        cfg = _server.config(sock, 2 * read_timeout_s, keep_alive_s=read_timeout_s, tls=tls, http1_only=True)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        also = f" or tls_client_ca {tls_client_ca}" if tls_client_ca else ""
        raise BadInput(f"tls_cert {tls_cert}{also}: cannot load certificate and key ({type(exc).__name__})") from None
    routes: dict = {}
    if rollout_spec:
        from sre_llm.deploy.gates import FlaggerGates

        routes = FlaggerGates(rollout_spec).routes()
    app = Receiver(store, token, limits or Limits(body_timeout_s=read_timeout_s), log, outcome_window_s, outcome_grace_s,
                   extra_routes=routes, open_paths=frozenset(routes))
    return ReceiverServer(app, sock, cfg, tls is not None)


def key_file(ref: str, root: str | Path = ".") -> tuple[str, str | None]:
    """A path for a TLS key reference; an ``env:`` key goes to a private temp file (returned second,
    for removal), because ssl loads keys from paths."""
    from sre_llm.secrets import resolve

    kind, _, name = ref.partition(":")
    if kind == "file":
        path = Path(name) if Path(name).is_absolute() else Path(root) / name
        if not path.is_file():
            raise BadInput(f"{ref}: no such file (relative paths are from {root})")
        return str(path), None
    value = resolve(ref, root)
    fd, tmp = tempfile.mkstemp(prefix="sre-llm-tls-", suffix=".pem")
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return tmp, tmp


def read_store(directory: str | Path) -> Iterator[dict | Quarantined]:
    """Alert records from everything the receiver stored (partial lines come back quarantined)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInput(f"alertmanager store {directory}: no such folder (has `sre-llm collect serve` run?)")
    for path in sorted(directory.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    entry = json.loads(line)
                    payload = entry["payload"]
                except (ValueError, KeyError, TypeError):
                    yield Quarantined.of("alertmanager", f"{path}:{n}", "not a stored webhook payload (cut short?)", line[:2000])
                    continue
                yield from webhook_alerts(payload, source="alertmanager")
