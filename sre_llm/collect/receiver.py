"""The Alertmanager webhook receiver as a raw ASGI app, served by :mod:`sre_llm.serve.server`.

Why raw ASGI and not a framework's ``await request.json()``: the body cap must hold on the bytes
actually read (a chunked body has no Content-Length; a Content-Length can lie), and the parse
must be guarded, so the receiver reads the body stream itself. Hypercorn bounds the rest: the
header block (size, and time from the connection's start), each read, idle keep-alive sockets.

Answers (JSON ``{"status": "ok"|"error", "message": …}``), never a dropped connection:

- 200 stored (after the fsync covering it: :mod:`sre_llm.collect.journal`), 503 could not store
  (Alertmanager retries);
- 401 missing or wrong bearer token (checked before the body is read);
- 411 no Content-Length and not chunked; 413 a body over ``max_body_bytes`` (at once when the
  Content-Length says so, else as soon as the bytes read pass it); 408 a body not received in
  full within ``body_timeout_s`` (a trickle); a malformed Content-Length (``-1``) is refused by
  the HTTP layer (h11) with a bare 400;
- 400 not UTF-8 / not JSON / nested too deeply / unpaired surrogate, 422 not an Alertmanager v4
  webhook, with the path of each problem (:mod:`sre_llm.collect.webhook`);
- 500 for anything unexpected, with the exception's type; the process keeps serving.

``POST /decisions`` records the gateway's decisions (same token, limits and answers) for the
decision → outcome join of :mod:`sre_llm.collect.outcomes`. With a rollout spec, ``POST
/flagger/{shadow,check,confirm}`` are Flagger's webhook gates (:mod:`sre_llm.deploy.gates`). ``GET /healthz`` and ``/-/healthy``
answer 200; ``GET /metrics`` is Prometheus text (requests, fsync groups, remediation outcomes).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily

from sre_llm.collect.alertmanager import STORE_FILE
from sre_llm.collect.journal import GroupCommit, Journal
from sre_llm.collect.outcomes import (
    DECISIONS_FILE,
    OutcomeBook,
    check_decision,
    replay,
    resolutions,
)
from sre_llm.collect.webhook import Caps, Refused, check, parse

_JSON = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class Limits:
    """What one request may cost the receiver."""

    max_body_bytes: int = 16 << 20
    body_timeout_s: float = 10.0
    caps: Caps = field(default_factory=Caps)
    thread_parse_bytes: int = 256 << 10  # bigger bodies are parsed off the event loop


class Answer(Exception):
    """Ends a request early with ``status`` and ``message`` (and closes the connection when the
    body was not read to its end)."""

    def __init__(self, status: int, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.message, self.close = status, message, close


Handler = Callable[[dict, bytes], Awaitable[tuple[int, str]]]


class Receiver:
    """The ASGI app. ``routes`` adds POST handlers (path → ``handler(scope, body)``) that share the
    token check, the body limits and the metrics (the decision endpoint uses it). ``extra_routes``
    are more of them; those in ``open_paths`` skip the token (Flagger's webhooks send no header:
    :mod:`sre_llm.deploy.gates`)."""

    def __init__(self, store: str | Path, token: str | None = None, limits: Limits = Limits(),
                 log: Callable[[str], None] | None = None, outcome_window_s: float = 1800.0,
                 outcome_grace_s: float = 300.0, extra_routes: dict[str, Handler] | None = None,
                 open_paths: frozenset[str] = frozenset()):
        self.store = Path(store)
        self.token = f"Bearer {token}".encode() if token is not None else None
        self.limits = limits
        self.log = log or _quiet
        self.commit = GroupCommit(Journal(self.store / STORE_FILE))
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("sre_llm_receiver_requests", "Requests answered, by path and status code.",
                                ["path", "code"], registry=self.registry)
        self.alerts = Counter("sre_llm_receiver_alerts_stored", "Alerts in stored webhook payloads.",
                              registry=self.registry)
        self.registry.register(_GroupMetrics(self.commit))
        # Decision → outcome (sre_llm.collect.outcomes): the gateway posts its decisions here.
        self.book = OutcomeBook(outcome_window_s, outcome_grace_s)
        replay(self.book, self.store, STORE_FILE)
        self.registry.register(self.book)
        self.decisions = GroupCommit(Journal(self.store / DECISIONS_FILE))
        self.routes: dict[str, Handler] = {"/": self._webhook, "/decisions": self._decision, **(extra_routes or {})}
        self.open_paths = open_paths

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        try:
            if method in ("GET", "HEAD") and path in ("/healthz", "/-/healthy"):
                status, message = 200, "healthy"
            elif method == "GET" and path == "/metrics":
                await _send(send, 200, generate_latest(self.registry), [(b"content-type", b"text/plain; version=0.0.4")])
                return
            elif path in self.routes:
                if method != "POST":
                    raise Answer(405, f"{path} takes POST")
                if path not in self.open_paths:
                    self._authorize(scope)
                body = await self._body(scope, receive)
                status, message = await self.routes[path](scope, body)
            else:
                raise Answer(404, "POST Alertmanager webhooks to /")
            close = False
        except Answer as a:
            status, message, close = a.status, a.message, a.close
        except Exception as exc:  # noqa: BLE001 - one request's bug must not take the receiver down
            status, message, close = 500, f"internal error ({type(exc).__name__})", True
            self.log(f"internal error on {method} {path}: {type(exc).__name__}: {exc}")
        self.requests.labels(path if path in self.routes or path in ("/healthz", "/-/healthy") else "other",
                             str(status)).inc()
        if self.log is not _quiet:
            client = scope.get("client") or ("-", 0)
            self.log(f"{client[0]} {method} {path} {status}")
        await _send(send, status, _answer(status, message), _JSON + ([(b"connection", b"close")] if close else []))

    def _authorize(self, scope: dict) -> None:
        if self.token is None:
            return
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if not hmac.compare_digest(given, self.token):
            raise Answer(401, "missing or wrong bearer token", close=True)

    async def _body(self, scope: dict, receive: Callable) -> bytes:
        """The body, read up to the cap and within the deadline, whatever the headers claim."""
        headers = dict(scope["headers"])
        limit = self.limits.max_body_bytes
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            raise Answer(411, "Content-Length required", close=True)
        if length is not None and int(length) > limit:  # h11 has checked it is digits
            raise Answer(413, f"payload over {limit} bytes", close=True)
        chunks: list[bytes] = []

        async def read() -> None:
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Answer(400, "client went away before the body's end", close=True)
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise Answer(413, f"payload over {limit} bytes", close=True)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return

        try:  # wait_for, not asyncio.timeout: the dataset extra still runs on Python 3.10
            await asyncio.wait_for(read(), self.limits.body_timeout_s)
        except asyncio.TimeoutError:
            raise Answer(408, f"body not received within {self.limits.body_timeout_s:g}s", close=True) from None
        return b"".join(chunks)

    async def _webhook(self, scope: dict, body: bytes) -> tuple[int, str]:
        if len(body) > self.limits.thread_parse_bytes:
            payload, data = await asyncio.to_thread(self._check, body)
        else:
            payload, data = self._check(body)
        await self.durably(self.commit, data)
        self.alerts.inc(len(payload["alerts"]))
        for fingerprint, ends in resolutions(payload):
            self.book.resolved(fingerprint, ends)
        return 200, f"stored {len(payload['alerts'])} alert(s)"

    async def _decision(self, scope: dict, body: bytes) -> tuple[int, str]:
        try:
            value = parse(body)
        except Refused as r:
            raise Answer(r.status, r.reasons[0]) from None
        decision, errors = check_decision(value)
        if errors:
            raise Answer(422, "; ".join(errors))
        line = json.dumps({"received": _now(), "decision": value}, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))
        try:
            data = (line + "\n").encode()
        except UnicodeEncodeError:
            raise Answer(400, "body holds an unpaired surrogate escape (not storable as UTF-8)") from None
        await self.durably(self.decisions, data)
        self.book.decide(decision)
        return 200, "recorded"

    def _check(self, body: bytes) -> tuple[dict[str, Any], bytes]:
        """The payload and its store line, or an :class:`Answer` (400 / 422)."""
        try:
            payload = parse(body)
        except Refused as r:
            raise Answer(r.status, r.reasons[0]) from None
        line = json.dumps({"received": _now(), "payload": payload}, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))
        try:
            data = (line + "\n").encode()
        except UnicodeEncodeError:  # "\ud800" parses to a str that UTF-8 cannot hold: an encoding error
            raise Answer(400, "body holds an unpaired surrogate escape (not storable as UTF-8)") from None
        errors = check(payload, self.limits.caps)
        if errors:
            raise Answer(422, "; ".join(errors))
        return payload, data

    async def durably(self, commit: GroupCommit, data: bytes) -> None:
        """Await ``data`` on disk; a storage error becomes a 503 so the sender retries."""
        try:
            await commit.commit(data)
        except OSError as exc:
            self.log(f"cannot store: {type(exc).__name__}: {exc}")
            raise Answer(503, "cannot store the payload; retry later") from None

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.commit.close()
                await self.decisions.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _GroupMetrics:
    """fsync groups and the lines they carried: lines / groups is the group-commit factor."""

    def __init__(self, commit: GroupCommit):
        self.commit = commit

    def collect(self):
        yield CounterMetricFamily("sre_llm_receiver_fsync_groups", "fsyncs of the webhook store.", self.commit.groups)
        yield CounterMetricFamily("sre_llm_receiver_fsync_lines", "Lines written by those fsyncs.", self.commit.lines)

    def describe(self):
        return []


async def _send(send: Callable, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _quiet(line: str) -> None:
    pass


@functools.lru_cache(maxsize=256)
def _answer(status: int, message: str) -> bytes:
    """The JSON answer (cached: under load nearly every answer is "stored 1 alert(s)")."""
    return (json.dumps({"status": "ok" if status < 300 else "error", "message": message}) + "\n").encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
