"""Raw records: the one shape every source produces and the pipeline reads.

Every collector (Prometheus, the Alertmanager receiver, runbook logs, Linear, git) and the
synthetic generator turns what it reads into JSON objects of these kinds, one per line:

``alert`` — an alert as Alertmanager describes it::

    {"kind": "alert", "source": "prometheus", "fingerprint": "c0ffee…", "status": "firing",
     "labels": {...}, "annotations": {...}, "startsAt": "2025-05-01T12:00:00Z",
     "endsAt": "2025-05-01T12:10:00Z", "incident": "optional group id"}

``action`` — what agent-sre ran for an alert (runbook action logs; see docs/dataset.md)::

    {"kind": "action", "source": "runbook", "fingerprint": "c0ffee…", "labels": {...},
     "lambda_function": "pod-restart", "parameters": {...}, "outcome": "success",
     "timestamp": "2025-05-01T12:00:40Z"}

``resolution`` — a human resolution linked to an alert (Linear issue, merged commit); it labels
the alert only when it names a LambdaFunction (without one it still says someone acted, so the
alert is not taken to have resolved on its own).

``label`` — a row of a ``labels`` file a person filled in (:mod:`sre_llm.dataset.labelfile`)::

    {"kind": "label", "source": "labels", "where": "labels.csv:3", "fingerprint": "c0ffee…",
     "alertname": "…", "namespace": "…", "startsAt": "2025-05-01T12:00:00Z",
     "lambda_function": "none", "parameters": {}}

An alert's ``endsAt`` is when it stopped firing; absent (or Alertmanager's zero time) while it
still fires.

Records are plain dicts (a dataclass per record costs more than the whole budget of the 100k
benchmark); :func:`check_alert` and friends are the schema.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

KINDS = ("alert", "action", "resolution", "label")
OUTCOMES = ("success", "failure", "unknown")

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's alert fingerprint: FNV-1a 64 over sorted ``name 0xff value 0xff``.

    The same algorithm as Prometheus' ``model.LabelSet.Fingerprint``, so records from every
    source join on the value Alertmanager puts in its webhooks.
    """
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, str(labels[name])):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def utc(value: Any) -> str | None:
    """An RFC 3339 time (or Unix seconds) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC; None if unusable."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not isinstance(value, str):
        return None
    if _UTC_Z.match(value):
        return value if value > "1971" else None
    text = value.strip().replace("Z", "+00:00")
    # Go writes nanoseconds; Python's fromisoformat (3.10) takes at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    if dt.year < 1971:  # Alertmanager's zero time "0001-01-01T00:00:00Z" means "not set"
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(stamp: str) -> float:
    """``YYYY-MM-DDTHH:MM:SSZ`` → Unix seconds."""
    return datetime.fromisoformat(stamp[:-1]).replace(tzinfo=timezone.utc).timestamp()


_ONLY_STR = {str}


def _str_map(value: Any) -> bool:
    # Keys of parsed JSON objects are always strings; only the values need a look.
    return type(value) is dict and (not value or set(map(type, value.values())) == _ONLY_STR)


def check(record: Any) -> str | None:
    """Why ``record`` is not a usable raw record, or None when it is."""
    if not isinstance(record, dict):
        return f"record must be a JSON object (got {type(record).__name__})"
    kind = record.get("kind", "alert")
    if kind not in KINDS:
        return f"kind must be one of {', '.join(KINDS)} (got {kind!r})"
    labels = record.get("labels", {})
    if not _str_map(labels):
        return "labels must be an object of strings"
    if kind == "alert":
        if not labels.get("alertname"):
            return "alert has no alertname label"
        if not _str_map(record.get("annotations", {})):
            return "annotations must be an object of strings"
        if utc(record.get("startsAt")) is None:
            return f"startsAt is not an RFC 3339 time (got {record.get('startsAt')!r})"
        return None
    if kind == "label":
        return _check_label(record)
    if not isinstance(record.get("lambda_function"), str) and kind == "action":
        return "action has no lambda_function"
    if kind == "action" and not isinstance(record.get("parameters", {}), dict):
        return "action parameters must be a JSON object"
    if record.get("outcome", "unknown") not in OUTCOMES:
        return f"outcome must be one of {', '.join(OUTCOMES)} (got {record.get('outcome')!r})"
    if utc(record.get("timestamp")) is None:
        return f"timestamp is not an RFC 3339 time (got {record.get('timestamp')!r})"
    if not record.get("fingerprint") and not labels and not record.get("alertname") and not isinstance(record.get("alert"), dict):
        return "nothing links it to an alert: give fingerprint or labels"
    return None


def _check_label(record: dict) -> str | None:
    if not isinstance(record.get("lambda_function"), str) or not record["lambda_function"]:
        return "label has no lambda_function"
    if not isinstance(record.get("parameters", {}), dict):
        return "label parameters must be a JSON object"
    start = record.get("startsAt")
    if start not in (None, "") and utc(start) is None:
        return f"startsAt is not an RFC 3339 time (got {start!r})"
    if not record.get("fingerprint") and not (record.get("alertname") and utc(start)):
        return "label names no alert: give fingerprint, or alertname and startsAt"
    return None


class Quarantined(dict):
    """A record set aside with the reason (written to quarantine.jsonl, never silently dropped)."""

    @classmethod
    def of(cls, source: str, where: str, reason: str, record: Any) -> "Quarantined":
        return cls(source=source, where=where, reason=reason, record=record)


_scan = json.JSONDecoder().scan_once


def loads(text: str) -> Any:
    """``json.loads`` for ``str``, without its per-call overhead in the common case.

    A text that starts with ``{`` and ends with ``}`` (or ``}\\n``) goes straight to the C
    scanner; anything else, and anything the scanner rejects, goes through ``json.loads``, so
    results and error messages are exactly its own.
    """
    if text[:1] == "{":
        end = len(text) - (text[-1:] == "\n")
        if text[end - 1:end] == "}":
            try:
                obj, stop = _scan(text, 0)
            except (StopIteration, ValueError):
                pass
            else:
                if stop == end:
                    return obj
    return json.loads(text)


def read_jsonl(path: str | Path, source: str) -> Iterator[dict | Quarantined]:
    """Records from a JSONL file; a line that is not JSON comes back quarantined with file:line."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line[:1] != "{" and not line.strip():
                continue
            try:
                obj = loads(line)
            except json.JSONDecodeError as exc:
                yield Quarantined.of(source, f"{path}:{n}", f"not JSON: {exc.msg}", line.rstrip("\n")[:2000])
                continue
            if isinstance(obj, dict):
                obj.setdefault("source", source)
            yield obj


def webhook_alerts(payload: Mapping[str, Any], source: str = "alertmanager") -> Iterator[dict]:
    """Alert records from one Alertmanager webhook payload (version 4), firing and resolved.

    A ``resolved`` notification carries the ``endsAt`` that a firing one lacks (Alertmanager sends
    its zero time): the evidence that the alert ended, which the pipeline joins to the firing by
    fingerprint and ``startsAt``. The payload's ``groupKey`` is not used as the incident: with
    ``group_by: [alertname]`` it would put every alert of a name into one split.
    """
    for alert in payload.get("alerts") or []:
        status = alert.get("status", "firing") if isinstance(alert, dict) else None
        if status not in ("firing", "resolved"):
            continue
        labels = alert.get("labels") or {}
        yield {
            "kind": "alert",
            "source": source,
            "fingerprint": alert.get("fingerprint") or (fingerprint(labels) if _str_map(labels) else ""),
            "status": status,
            "labels": labels,
            "annotations": alert.get("annotations") or {},
            "startsAt": alert.get("startsAt"),
            "endsAt": utc(alert.get("endsAt")) if status == "resolved" else None,
            "generatorURL": alert.get("generatorURL", ""),
        }


def iter_all(groups: Iterable[Iterable[dict | Quarantined]]) -> Iterator[dict | Quarantined]:
    for group in groups:
        yield from group
