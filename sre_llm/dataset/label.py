"""Labelling: which LambdaFunction (with which parameters) was the right answer to an alert,
and what says so. An alert without evidence is *unlabelled*, never a ``none`` example: a model
is trained precisely for the alerts nobody annotated, so "no annotation" proves nothing.

Evidence, strongest first (the kind goes on the card, per label):

1. ``labels``: a row of a file a person filled in (the ``labels`` source, the round trip of
   ``sre-llm dataset unlabelled``), joined by fingerprint + ``startsAt``, fingerprint alone, or
   alertname + namespace + ``startsAt``;
2. ``action``: an ``action`` record (agent-sre's runbook log, or a Linear/git resolution naming a
   function) for the alert: same fingerprint, or same alertname + namespace, at a time inside
   the alert's window (from a minute before ``startsAt`` to five minutes after ``endsAt``, an
   hour when it has no end). It also says whether the remediation worked (``outcome``);
3. ``annotation``: the agent-sre rule convention, ``annotations.lambda_function`` and
   ``annotations.lambda_parameters`` (the JSON the rule's template expanded to);
4. ``self_resolved``: the alert ended (``endsAt``, from its record or a ``resolved``
   notification) within the spec's ``self_resolve_window`` of ``startsAt`` and nothing was done
   about it: no action and no human resolution in its window. Always ``none``.

``none`` from 1–3 is an explicit no-action mark (a row, an action or ``lambda_function: none``).
Anything else is unlabelled.

Pure; :mod:`sre_llm.dataset.pipeline` applies it, and the catalog check is
:mod:`sre_llm.dataset.quality`'s.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from typing import Any, Iterable, Iterator

from sre_llm.dataset.records import loads, seconds, utc

BEFORE_S = 60
AFTER_S = 300
OPEN_WINDOW_S = 3600

#: Evidence kinds, strongest first (an alert with none is unlabelled).
LABELS, ACTION, ANNOTATION, SELF_RESOLVED = "labels", "action", "annotation", "self_resolved"
EVIDENCE = (LABELS, ACTION, ANNOTATION, SELF_RESOLVED)


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
    """(function, params, problem) from the agent-sre annotation convention; function ``""``
    when the alert carries none (no evidence, not ``none``)."""
    fn = (annotations.get("lambda_function") or "").strip()
    if not fn:
        return "", {}, None
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


def self_resolved(starts_at: str, ends_at: str | None, window_s: float | None) -> bool:
    """Whether the alert ended within ``window_s`` of starting (never when either is unknown)."""
    return bool(ends_at) and window_s is not None and seconds(ends_at) - seconds(starts_at) <= window_s


class LabelIndex:
    """Rows of ``labels`` files: by (fingerprint, startsAt), by fingerprint (every firing of that
    label set) and by (alertname, namespace, startsAt). A later row replaces an earlier one."""

    def __init__(self, rows: Iterable[dict]):
        self._exact: dict[tuple[str, str], dict] = {}
        self._fp: dict[str, dict] = {}
        self._named: dict[tuple[str, str, str], dict] = {}
        for r in rows:
            start = utc(r.get("startsAt"))
            if r.get("fingerprint"):
                if start:
                    self._exact[(r["fingerprint"], start)] = r
                else:
                    self._fp[r["fingerprint"]] = r
            else:
                self._named[(r["alertname"], r.get("namespace") or "", start or "")] = r

    def __bool__(self) -> bool:
        return bool(self._exact or self._fp or self._named)

    def find(self, fingerprint: str, alertname: str, namespace: str, starts_at: str) -> dict | None:
        """The row for this firing of this alert, most specific first."""
        return (self._exact.get((fingerprint, starts_at)) or self._named.get((alertname, namespace, starts_at))
                or self._fp.get(fingerprint))


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
