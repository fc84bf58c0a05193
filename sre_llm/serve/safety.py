"""Action safety after the guard: the kill switch, functions allowed per namespace, rate limits.

The guard (:mod:`sre_llm.answer.guard`) decides whether an answer is a *valid* action for the
alert; this module decides whether the operators *let* it through now. Each refusal turns the
decision into ``none`` with a reason and a fixed metric class (``kill_switch``,
``namespace_not_allowed``, ``rate_limited``), so agent-sre falls back to its static annotations.

- **Kill switch**: a file the gateway re-reads every few seconds — in the cluster the key
  ``enabled`` of a mounted ConfigMap (the kubelet refreshes mounted ConfigMaps within about a
  minute and needs no RBAC from the gateway). ``true`` (case-insensitive) means on; a missing file
  means off, so a cluster without the ConfigMap serves as before.
- **Allowed functions**: keyed by the alert's ``namespace`` label; ``*`` for every other
  namespace; no table at all allows every catalog function.
- **Rate limits**: per function and target (the parameters' namespace and name), a sliding window
  kept in this replica's memory: N replicas allow up to N times the limit (the spec says so).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sre_llm.answer import Decision
from sre_llm.catalog import NONE

KILL_SWITCH, NOT_ALLOWED, RATE_LIMITED = "kill_switch", "namespace_not_allowed", "rate_limited"


@dataclass(frozen=True)
class RateLimit:
    function: str
    max: int
    per_s: float


def parse_allow(text: str) -> tuple[str, tuple[str, ...]]:
    """``payments=pod-restart,scale-deployment`` (or ``*=…``; ``ns=`` allows none) → the pair."""
    namespace, sep, functions = text.partition("=")
    if not sep or not namespace:
        raise ValueError(f"{text!r}: write NAMESPACE=FUNCTION[,FUNCTION…] (NAMESPACE may be *)")
    return namespace, tuple(f for f in functions.split(",") if f)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate_limit(text: str) -> RateLimit:
    """``pod-restart=3/1h`` → at most 3 pod-restarts of one target per hour."""
    function, sep, rest = text.partition("=")
    count, slash, per = rest.partition("/")
    if not sep or not slash or not count.isdigit() or int(count) < 1 or len(per) < 2 or per[-1] not in _UNITS \
            or not per[:-1].isdigit() or int(per[:-1]) < 1:
        raise ValueError(f"{text!r}: write FUNCTION=MAX/DURATION, e.g. pod-restart=3/1h")
    return RateLimit(function, int(count), int(per[:-1]) * _UNITS[per[-1]])


class KillSwitch:
    """``on`` reads the file at most every ``poll_s`` seconds."""

    def __init__(self, path: str | None, poll_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path) / "enabled" if path and Path(path).is_dir() else (Path(path) if path else None)
        self.poll_s = poll_s
        self.clock = clock
        self._checked = -1e18
        self._on = False

    @property
    def on(self) -> bool:
        if self.path is None:
            return False
        now = self.clock()
        if now - self._checked >= self.poll_s:
            self._checked = now
            try:
                self._on = self.path.read_text(encoding="utf-8").strip().strip('"').lower() == "true"
            except FileNotFoundError:
                self._on = False
            except (OSError, UnicodeDecodeError):
                pass  # keep the last value: a file half-replaced by the kubelet's symlink swap
        return self._on


class Safety:
    """Applies the kill switch, the allow-list and the rate limits to guarded decisions."""

    def __init__(self, allowed: Mapping[str, tuple[str, ...]] | None = None, rate_limits: tuple[RateLimit, ...] = (),
                 kill_switch: KillSwitch | None = None, clock: Callable[[], float] = time.monotonic):
        self.allowed = dict(allowed or {})
        self.limits = {r.function: r for r in rate_limits}
        self.kill_switch = kill_switch or KillSwitch(None)
        self.clock = clock
        self._seen: dict[tuple[str, str, str], deque[float]] = {}

    def killed(self) -> str | None:
        """The reason every answer is none now, or None."""
        if self.kill_switch.on:
            return f"the kill switch is on ({self.kill_switch.path}): every answer is none"
        return None

    def check(self, decision: Decision, labels: Mapping[str, str], consume: bool = True) -> tuple[Decision, str | None]:
        """The decision that may run, and the block class when it was refused. ``consume=False``
        checks without counting toward a rate limit (shadow answers are never acted on)."""
        if decision.function == NONE:
            return decision, None
        namespace = labels.get("namespace", "")
        if self.allowed:
            functions = self.allowed.get(namespace, self.allowed.get("*", ()))
            if decision.function not in functions:
                return _blocked(decision, f"{decision.function} is not allowed in namespace {namespace or '(none)'} "
                                          f"by the policy (allowed: {', '.join(functions) or 'none'})"), NOT_ALLOWED
        limit = self.limits.get(decision.function)
        if limit is not None:
            params = decision.parameters
            key = (decision.function, str(params.get("namespace", namespace)), str(params.get("name", "")))
            now = self.clock()
            seen = self._seen.setdefault(key, deque())
            while seen and now - seen[0] >= limit.per_s:
                seen.popleft()
            if len(seen) >= limit.max:
                return _blocked(decision, f"rate limit: {decision.function} of {key[1]}/{key[2]} already {len(seen)} "
                                          f"times in {_span(limit.per_s)} (limit {limit.max})"), RATE_LIMITED
            if consume:
                seen.append(now)
        return decision, None


def _span(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def _blocked(decision: Decision, reason: str) -> Decision:
    return Decision(NONE, {}, reason=reason, proposed=decision.function)
