"""Labelling: which LambdaFunction (with which parameters) was the right answer to an alert.

Ground truth, strongest first:

1. an ``action`` record (agent-sre's runbook log, or a Linear/git resolution naming a
   function) for the alert: same fingerprint, or same alertname + namespace, at a time inside
   the alert's window (from a minute before ``startsAt`` to five minutes after ``endsAt``, an
   hour when it has no end). It also says whether the remediation worked (``outcome``);
2. the agent-sre rule convention: ``annotations.lambda_function`` and
   ``annotations.lambda_parameters`` (the JSON the rule's template expanded to);
3. neither: the alert needed no action, a ``none`` example.

Pure; :mod:`sre_llm.dataset.pipeline` applies it, and the catalog check is
:mod:`sre_llm.dataset.quality`'s.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from typing import Any, Iterable, Iterator

from sre_llm.catalog import NONE
from sre_llm.dataset.records import loads, seconds, utc

BEFORE_S = 60
AFTER_S = 300
OPEN_WINDOW_S = 3600


class ActionIndex:
    """Actions by fingerprint and by (alertname, namespace), each list sorted by time."""

    def __init__(self, actions: Iterable[dict]):
        by_fp: dict[str, list[tuple[float, int, dict]]] = defaultdict(list)
        by_name: dict[tuple[str, str], list[tuple[float, int, dict]]] = defaultdict(list)
        for i, a in enumerate(actions):
            t = seconds(utc(a["timestamp"]))  # checked by records.check
            labels = a.get("labels") or {}
            if a.get("fingerprint"):
                by_fp[a["fingerprint"]].append((t, i, a))
            name = labels.get("alertname") or a.get("alertname")
            if name:
                by_name[(name, labels.get("namespace", a.get("namespace", "")))].append((t, i, a))
        for table in (by_fp, by_name):
            for entries in table.values():
                entries.sort(key=lambda e: (e[0], e[1]))
        self._by_fp, self._by_name = dict(by_fp), dict(by_name)

    def __bool__(self) -> bool:
        return bool(self._by_fp or self._by_name)

    def find(self, fingerprint: str, alertname: str, namespace: str, starts_at: str, ends_at: str | None) -> dict | None:
        """The first action inside the alert's window, by fingerprint, else by name+namespace."""
        start = seconds(starts_at)
        end = seconds(ends_at) + AFTER_S if ends_at else start + OPEN_WINDOW_S
        end = max(end, start + AFTER_S)
        for entries in (self._by_fp.get(fingerprint), self._by_name.get((alertname, namespace))):
            if not entries:
                continue
            j = bisect.bisect_left(entries, (start - BEFORE_S, -1))
            if j < len(entries) and entries[j][0] <= end:
                return entries[j][2]
        return None


def from_annotations(annotations: dict) -> tuple[str, Any, str | None]:
    """(function, params, problem) from the agent-sre annotation convention."""
    fn = (annotations.get("lambda_function") or "").strip()
    if not fn:
        return NONE, {}, None
    raw = annotations.get("lambda_parameters")
    if raw is None or raw.strip() == "":
        return fn, {}, None
    if "{{" in raw:
        return fn, None, "annotation lambda_parameters holds an unexpanded template"
    try:
        params = loads(raw)
    except json.JSONDecodeError as exc:
        return fn, None, f"annotation lambda_parameters is not valid JSON: {exc.msg}"
    return fn, params, None


def alerts_from_actions(actions: Iterable[dict]) -> Iterator[dict]:
    """Runbook entries that embed the alert they answered (``alert: {labels, annotations,
    startsAt}``) are alerts too: a runbook log alone makes examples."""
    for a in actions:
        embedded = a.get("alert")
        if isinstance(embedded, dict):
            labels = embedded.get("labels") or a.get("labels") or {}
            yield {
                "kind": "alert",
                "source": a.get("source", "runbook"),
                "fingerprint": embedded.get("fingerprint") or a.get("fingerprint") or "",
                "status": "firing",
                "labels": labels,
                "annotations": embedded.get("annotations") or {},
                "startsAt": embedded.get("startsAt") or a.get("timestamp"),
                "endsAt": embedded.get("endsAt"),
                **({"incident": a["incident"]} if a.get("incident") else {}),
            }
