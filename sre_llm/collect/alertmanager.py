"""Alertmanager webhook receiver (``sre-llm collect serve``) and reader of what it stored.

Durability contract: a payload is appended to ``<store>/webhook.jsonl`` and fsync'd *before* the
receiver answers 200. If it cannot store (disk full, permissions, anything), it answers 503 and
Alertmanager retries. So a payload that got a 200 survives a SIGKILL of the receiver a moment
later; one that did not is re-sent. A payload cut short by a crash mid-write was never
acknowledged; the reader quarantines that partial last line.

Each stored line: ``{"received": "<RFC 3339>", "payload": <the webhook body>}``.
"""

from __future__ import annotations

import hmac
import json
import os
import ssl
import tempfile
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from sre_llm.dataset.records import Quarantined, webhook_alerts
from sre_llm.errors import BadInput
from sre_llm.fsutil import _fsync_dir

STORE_FILE = "webhook.jsonl"
MAX_BODY = 16 * 2**20


class Store:
    """Append-only, fsync'd JSONL of received payloads (one writer at a time)."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.path = self.dir / STORE_FILE
        self._lock = threading.Lock()

    def append(self, payload: dict) -> None:
        """Durably append one payload; raises OSError when it could not be stored."""
        line = json.dumps({"received": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                           "payload": payload}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        data = (line + "\n").encode()
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            # Opened per payload: a store replaced or unmounted underneath shows up as an error
            # (and a 503) on the next request instead of writes to a stale descriptor.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.dir)


def _handler(store: Store, token: str | None, log: callable) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sre-llm-collect"
        protocol_version = "HTTP/1.1"

        def _answer(self, code: int, message: str) -> None:
            body = (json.dumps({"status": "ok" if code == 200 else "error", "message": message}) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path in ("/healthz", "/-/healthy"):
                self._answer(200, "healthy")
            else:
                self._answer(404, "POST Alertmanager webhooks to /")

        def do_POST(self) -> None:  # noqa: N802
            if token is not None:
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    self._answer(401, "missing or wrong bearer token")
                    return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, "Content-Length required")
                return
            if length > MAX_BODY:
                self._answer(413, f"payload over {MAX_BODY} bytes")
                return
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
            except ValueError:
                self._answer(400, "body is not JSON")
                return
            if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
                self._answer(400, "not an Alertmanager webhook payload (no alerts list)")
                return
            try:
                store.append(payload)
            except OSError as exc:
                log(f"cannot store payload: {type(exc).__name__}: {exc}")
                self._answer(503, "cannot store the payload; retry later")
                return
            self._answer(200, f"stored {len(payload['alerts'])} alert(s)")

        def log_message(self, fmt: str, *args) -> None:
            log(f"{self.address_string()} {fmt % args}")

    return Handler


def make_server(
    store: str | Path, listen: str, token: str | None = None, tls_cert: str | None = None,
    tls_key_file: str | None = None, log: callable = lambda line: None,
) -> ThreadingHTTPServer:
    """A ready (bound) receiver; call ``serve_forever()``. ``listen`` is ``host:port`` (port 0 = any)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise BadInput(f"listen {listen!r}: expected host:port")
    try:
        server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), _handler(Store(store), token, log))
    except OSError as exc:
        raise BadInput(f"listen {listen}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    if tls_cert:
        if not tls_key_file:
            raise BadInput("tls_cert needs tls_key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(tls_cert, tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise BadInput(f"tls_cert {tls_cert}: cannot load certificate and key ({type(exc).__name__})") from None
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


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
