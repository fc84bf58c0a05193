"""Calls the gateway makes beside an answer, never in its way: decisions to the collector, and
copies of requests to the shadow challenger.

Both are fire-and-forget behind a bounded queue: :meth:`Outbox.offer` never awaits, a full queue
drops the item and counts it (``sre_llm_gateway_sidecall_dropped_total{target, reason}``), and a
failed call is counted, never raised. The client's answer is complete before any of this runs.

- :class:`Collector`: ``POST <url>/decisions`` with ``{fingerprint, revision, model_version,
  function, at}`` (and a bearer token when given); the collector joins it with Alertmanager's
  ``resolved`` notification by the label-set fingerprint (:mod:`sre_llm.answer.fingerprint`).
- :class:`Shadow`: the canonical prompt to the challenger's ``/api/generate`` with header
  ``X-Sre-Llm-Shadow: 1`` (the challenger then acts on nothing: no report, no rate-limit use, no
  shadow of its own); its decision is compared with the champion's guarded one and counted in
  ``sre_llm_shadow_decisions_total{agree, shadow_revision}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from sre_llm.answer import Decision
from sre_llm.serve.metrics import Metrics, reason_class

SHADOW_HEADER, REVISION_HEADER = "X-Sre-Llm-Shadow", "X-Sre-Llm-Revision"


class Outbox:
    """A bounded queue drained by ``workers`` tasks calling ``send(item)`` (started on first use,
    inside the server's event loop)."""

    def __init__(self, name: str, send: Callable[[Any], Awaitable[None]], metrics: Metrics, size: int, workers: int = 2):
        self.name, self.send, self.metrics, self.size, self.workers = name, send, metrics, size, workers
        self.queue: asyncio.Queue | None = None
        self.tasks: list[asyncio.Task] = []

    def offer(self, item: Any) -> None:
        if self.queue is None:
            self.queue = asyncio.Queue(self.size)
            self.tasks = [asyncio.get_running_loop().create_task(self._drain()) for _ in range(self.workers)]
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.metrics.sidecall_dropped(self.name, "queue_full")

    async def _drain(self) -> None:
        assert self.queue is not None  # noqa: S101 - an invariant for the type checker, not a security check
        while True:
            item = await self.queue.get()
            try:
                await self.send(item)
            except Exception as exc:  # noqa: BLE001 - counted; the answer is long gone
                self.metrics.sidecall_dropped(self.name, type(exc).__name__)
            finally:
                self.queue.task_done()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until everything offered so far was sent (tests, shutdown)."""
        if self.queue is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.queue.join(), timeout_s)

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _Failed(Exception):
    pass


class Collector:
    """Reports live decisions to ``sre-llm collect serve``."""

    def __init__(self, url: str, metrics: Metrics, token: str | None = None, queue_size: int = 1000, timeout_s: float = 5.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
        self.metrics = metrics
        self.outbox = Outbox("collector", self._send, metrics, queue_size)

    def report(self, fingerprint: str, function: str) -> None:
        self.outbox.offer({"fingerprint": fingerprint, "revision": self.metrics.base["revision"],
                           "model_version": self.metrics.base["model_version"], "function": function,
                           "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")})

    async def _send(self, item: dict[str, Any]) -> None:
        response = await self.client.post("/decisions", json=item)
        if response.status_code >= 300:
            raise _Failed(f"HTTP {response.status_code}")
        self.metrics.sidecall_sent("collector")

    async def aclose(self) -> None:
        await self.outbox.aclose()
        await self.client.aclose()


class Shadow:
    """Asks the challenger the same question and counts whether it agrees."""

    def __init__(self, url: str, model: str, metrics: Metrics, own_revision: str, queue_size: int = 256,
                 timeout_s: float = 120.0):
        self.client = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=httpx.Timeout(timeout_s, connect=5.0))
        self.model, self.metrics, self.own_revision = model, metrics, own_revision
        self.outbox = Outbox("shadow", self._send, metrics, queue_size, workers=4)

    def compare(self, prompt: str, champion: Decision) -> None:
        self.outbox.offer((prompt, champion))

    async def _send(self, item: tuple[str, Decision]) -> None:
        prompt, champion = item
        response = await self.client.post("/api/generate", headers={SHADOW_HEADER: "1"},
                                          json={"model": self.model, "prompt": prompt, "stream": False})
        if response.status_code != 200:
            raise _Failed(f"HTTP {response.status_code}")
        revision = response.headers.get(REVISION_HEADER, "unknown")
        if revision == self.own_revision:  # the shadow URL routes back to this revision: nothing to compare
            self.metrics.sidecall_dropped("shadow", "self")
            return
        verdict = (response.json().get("sre_llm") or {}).get("shadow") or {}  # the challenger's guarded answer
        agree = verdict.get("function") == champion.function and (verdict.get("parameters") or {}) == champion.parameters
        block = reason_class(verdict["reason"]) if verdict.get("refused") and verdict.get("reason") else None
        self.metrics.shadow(revision, agree, block)

    async def aclose(self) -> None:
        await self.outbox.aclose()
        await self.client.aclose()
