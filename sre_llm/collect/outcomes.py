"""Decision → outcome: did the alert resolve after the model chose a remediation? (issue 14, collector half)

The gateway, after answering agent-sre, tells the receiver what it decided::

    POST /decisions   Authorization: Bearer <the receiver's token>   Content-Type: application/json
    {"fingerprint": "3cf3877de38c3d6c",      # the alert's: Alertmanager's, 16 hex digits
     "revision": "sre-llm-00042",            # the serving revision that answered (Knative's, or any name)
     "model_version": "1.4.0",               # the registered model version it serves
     "function": "pod-restart",              # the remediation chosen ("none" counts too)
     "at": "2025-05-01T12:00:03Z"}           # when it decided (RFC 3339)
    → 200 {"status": "ok", "message": "recorded"} once fsync'd; 422 with the path of a bad field; 503 retry

The fingerprint is Prometheus' ``model.LabelSet.Fingerprint()`` of the alert's labels (FNV-1a 64
over sorted ``name\\xffvalue\\xff``: :func:`sre_llm.dataset.records.fingerprint`), which is what
Alertmanager puts in each webhook alert's ``fingerprint``; so the gateway computes it from the
labels it was given and the join needs no other key.

The join: a decision is *resolved* when a ``resolved`` webhook alert with its fingerprint ends
(``endsAt``) within ``window_s`` after the decision; *unresolved* when ``window_s + grace_s`` pass
without one (``grace_s``: Alertmanager sends a resolution a group_interval or so after it
happens). Counted per revision on ``/metrics``::

    sre_llm_remediation_outcomes_total{revision, model_version, function, outcome="resolved|unresolved"}

Decisions are stored in ``<store>/decisions/decisions.jsonl`` (a subfolder: the webhook reader
globs ``<store>/*.jsonl``); on start the book is rebuilt from both journals, so the counters
survive a restart.
"""

from __future__ import annotations

import heapq
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

DECISIONS_FILE = Path("decisions") / "decisions.jsonl"
_FIELDS = ("fingerprint", "revision", "model_version", "function", "at")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}\Z")
_MAX_CHARS = 256


@dataclass(frozen=True)
class Decision:
    fingerprint: str
    revision: str
    model_version: str
    function: str
    at: float  # Unix seconds


def seconds(value: str) -> float | None:
    """An RFC 3339 time as Unix seconds (nanosecond fractions cut to microseconds); None if not one."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None


def check_decision(body: Any) -> tuple[Decision | None, list[str]]:
    """A :class:`Decision` from a POSTed body, or the problems, each ``field: what``."""
    if not isinstance(body, dict):
        return None, ["(body): expected an object"]
    errors = [f"{k if len(k) <= 64 else k[:61] + '...'}: unknown key" for k in body if k not in _FIELDS]
    for key in _FIELDS:
        value = body.get(key)
        if key not in body:
            errors.append(f"{key}: required")
        elif not isinstance(value, str) or not value:
            errors.append(f"{key}: expected a non-empty string")
        elif len(value) > _MAX_CHARS:
            errors.append(f"{key}: {len(value)} characters, over the limit of {_MAX_CHARS}")
        elif key == "fingerprint" and not _FINGERPRINT.match(value):
            errors.append("fingerprint: expected 16 lowercase hex digits (Alertmanager's alert fingerprint)")
        elif key == "at" and seconds(value) is None:
            errors.append("at: expected an RFC 3339 time with a zone")
    if errors:
        return None, errors
    return Decision(body["fingerprint"], body["revision"], body["model_version"], body["function"],
                    seconds(body["at"])), []


class OutcomeBook:
    """Open decisions, recent resolutions and the outcome counts. Pure: time comes in as arguments."""

    def __init__(self, window_s: float = 1800.0, grace_s: float = 300.0):
        self.window_s, self.grace_s = window_s, grace_s
        self.open: dict[str, list[Decision]] = defaultdict(list)
        self._deadlines: list[tuple[float, int, Decision]] = []
        self._recent: dict[str, list[float]] = defaultdict(list)  # fingerprint → resolution times
        self.counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self._seq = 0

    def decide(self, d: Decision) -> None:
        """A decision; resolved at once if its alert's resolution arrived first (a slow gateway)."""
        for ends in self._recent.get(d.fingerprint, ()):
            if d.at <= ends <= d.at + self.window_s:
                self._count(d, "resolved")
                return
        self.open[d.fingerprint].append(d)
        self._seq += 1
        heapq.heappush(self._deadlines, (d.at + self.window_s + self.grace_s, self._seq, d))

    def resolved(self, fingerprint: str, ends_at: float) -> None:
        """Alertmanager says the alert with ``fingerprint`` ended at ``ends_at``."""
        self._recent[fingerprint].append(ends_at)
        waiting = self.open.get(fingerprint)
        if not waiting:
            return
        keep = []
        for d in waiting:
            if d.at <= ends_at <= d.at + self.window_s:
                self._count(d, "resolved")
            else:
                keep.append(d)
        if keep:
            self.open[fingerprint] = keep
        else:
            del self.open[fingerprint]

    def expire(self, now: float) -> None:
        """Count decisions whose window (and grace) passed without a resolution as unresolved."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, d = heapq.heappop(self._deadlines)
            waiting = self.open.get(d.fingerprint)
            if waiting and d in waiting:
                waiting.remove(d)
                if not waiting:
                    del self.open[d.fingerprint]
                self._count(d, "unresolved")
        horizon = now - self.window_s - self.grace_s
        for fp in [fp for fp, times in self._recent.items() if max(times) < horizon]:
            del self._recent[fp]

    def _count(self, d: Decision, outcome: str) -> None:
        self.counts[(d.revision, d.model_version, d.function, outcome)] += 1

    def collect(self) -> Iterator:
        """prometheus_client collector protocol (the book is registered on the receiver's registry)."""
        self.expire(time.time())
        family = CounterMetricFamily(
            "sre_llm_remediation_outcomes", "Decisions whose alert resolved within the window after them, or not.",
            labels=["revision", "model_version", "function", "outcome"])
        for labels, n in sorted(self.counts.items()):
            family.add_metric(list(labels), n)
        yield family
        yield GaugeMetricFamily("sre_llm_remediation_decisions_open", "Decisions still inside their window.",
                                sum(len(v) for v in self.open.values()))

    def describe(self) -> list:
        return []


def resolutions(payload: dict) -> Iterator[tuple[str, float]]:
    """(fingerprint, endsAt seconds) of each resolved alert in a webhook payload."""
    for alert in payload.get("alerts", ()):
        if alert.get("status") == "resolved":
            ends = seconds(alert.get("endsAt"))
            if ends is not None:
                yield alert["fingerprint"], ends


def replay(book: OutcomeBook, store: Path, webhook_file: str) -> None:
    """Rebuild ``book`` from the journals (decisions first: the join is by time, not arrival order)."""
    for path, key in ((store / DECISIONS_FILE, "decision"), (store / webhook_file, "payload")):
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if key == "payload" and '"resolved"' not in line:
                    continue  # only resolutions matter here; most of a big store is firing alerts
                try:
                    entry = json.loads(line)[key]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash was never acknowledged
                if key == "decision":
                    d, _ = check_decision(entry)
                    if d is not None:
                        book.decide(d)
                else:
                    for fp, ends in resolutions(entry):
                        book.resolved(fp, ends)
    book.expire(time.time())
