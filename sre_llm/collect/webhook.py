"""Alertmanager webhook payloads (``version: "4"``): a guarded parse and a strict check with caps.

Why strict: the receiver stores what it accepts forever and the dataset is built from it, so a
payload that is not what Alertmanager sends (an old version, a typo'd field, a 2 MB label value)
is refused at the door with the place that is wrong, not discovered later by the pipeline.

The shape is Alertmanager's ``notify/webhook.Message``: ``template.Data`` (receiver, status,
alerts, groupLabels, commonLabels, commonAnnotations, externalURL) plus version, groupKey and
truncatedAlerts; each alert is ``template.Alert`` (status, labels, annotations, startsAt, endsAt,
generatorURL, fingerprint). Unknown keys are errors, like everywhere in the house.

Every way a body can be wrong maps to a status and a one-line reason (:class:`Refused`):
400 not UTF-8 / not JSON / nested too deeply / unpaired surrogate, 422 the wrong shape (with
the path of each problem, at most :data:`MAX_REPORTED`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_REPORTED = 10
_SURROGATE = re.compile("[\ud800-\udfff]")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}\Z")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\Z")
_TOP = {"version": str, "receiver": str, "status": str, "alerts": list, "groupLabels": dict, "commonLabels": dict,
        "commonAnnotations": dict, "externalURL": str, "groupKey": str, "truncatedAlerts": int}
_ALERT = {"status": str, "labels": dict, "annotations": dict, "startsAt": str, "endsAt": str, "generatorURL": str,
          "fingerprint": str}
_OPTIONAL = {"generatorURL"}
_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer"}


@dataclass(frozen=True)
class Caps:
    """Bounds on one payload; each exists because an unbounded one was probed (a 2 MB label)."""

    max_alerts: int = 5000
    max_labels: int = 128
    max_name_chars: int = 256
    max_label_value_chars: int = 4096
    max_annotation_value_chars: int = 65536
    max_string_chars: int = 8192  # receiver, externalURL, groupKey, generatorURL, times


class Refused(Exception):
    """A body the receiver will not store: an HTTP status and the reasons (first one first)."""

    def __init__(self, status: int, reasons: list[str]):
        super().__init__(reasons[0])
        self.status = status
        self.reasons = reasons


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(raw: bytes) -> Any:
    """JSON from ``raw``, or :class:`Refused` (400). Never lets a RecursionError out: CPython's
    decoder raises it cleanly at the interpreter's recursion limit, and it is turned into a 400."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, [f"body is not UTF-8 (byte {exc.start})"]) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise Refused(400, ["body is nested too deeply"]) from None
    except ValueError:
        raise Refused(400, ["body is not JSON"]) from None
    return value


def check(payload: Any, caps: Caps = Caps()) -> list[str]:
    """Problems with ``payload`` as an Alertmanager v4 webhook, each ``path: what`` (empty: fine)."""
    errors: list[str] = []
    if not isinstance(payload, dict):
        return ["(body): expected an object (an Alertmanager webhook payload)"]
    if "version" in payload and payload["version"] != "4":
        return [f"version: only Alertmanager's webhook version \"4\" is accepted (got {_short(payload['version'])})"]
    _fields(payload, _TOP, set(), "", errors)
    if payload.get("status") not in (None, "firing", "resolved") and isinstance(payload.get("status"), str):
        errors.append(f"status: expected firing or resolved (got {_short(payload['status'])})")
    for key in ("receiver", "externalURL", "groupKey"):
        _string(payload.get(key), key, caps.max_string_chars, errors)
    if isinstance(payload.get("truncatedAlerts"), int) and payload["truncatedAlerts"] < 0:
        errors.append("truncatedAlerts: must be >= 0")
    for key in ("groupLabels", "commonLabels"):
        _map(payload.get(key), key, caps.max_label_value_chars, caps, errors)
    _map(payload.get("commonAnnotations"), "commonAnnotations", caps.max_annotation_value_chars, caps, errors)
    alerts = payload.get("alerts")
    if isinstance(alerts, list):
        if len(alerts) > caps.max_alerts:
            errors.append(f"alerts: {len(alerts)} alerts, over the limit of {caps.max_alerts}")
        else:
            for i, alert in enumerate(alerts):
                _alert(alert, f"alerts[{i}]", caps, errors)
                if len(errors) >= MAX_REPORTED:
                    break
    return errors[:MAX_REPORTED]


def _alert(alert: Any, where: str, caps: Caps, errors: list[str]) -> None:
    if not isinstance(alert, dict):
        errors.append(f"{where}: expected an object")
        return
    _fields(alert, _ALERT, _OPTIONAL, where + ".", errors)
    if isinstance(alert.get("status"), str) and alert["status"] not in ("firing", "resolved"):
        errors.append(f"{where}.status: expected firing or resolved (got {_short(alert['status'])})")
    _map(alert.get("labels"), f"{where}.labels", caps.max_label_value_chars, caps, errors)
    _map(alert.get("annotations"), f"{where}.annotations", caps.max_annotation_value_chars, caps, errors)
    for key in ("startsAt", "endsAt"):
        value = alert.get(key)
        if _string(value, f"{where}.{key}", caps.max_string_chars, errors) and not _TIME.match(value):
            errors.append(f"{where}.{key}: expected an RFC 3339 time (got {_short(value)})")
    _string(alert.get("generatorURL"), f"{where}.generatorURL", caps.max_string_chars, errors)
    fp = alert.get("fingerprint")
    if isinstance(fp, str) and not _FINGERPRINT.match(fp):
        errors.append(f"{where}.fingerprint: expected 16 lowercase hex digits (got {_short(fp)})")


def _fields(obj: dict, spec: dict[str, type], optional: set[str], prefix: str, errors: list[str]) -> None:
    for key in obj:
        if key not in spec:
            errors.append(f"{prefix}{_key(key)}: unknown key")
    for key, kind in spec.items():
        if key not in obj:
            if key not in optional:
                errors.append(f"{prefix}{key}: required")
        elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            errors.append(f"{prefix}{key}: expected {_TYPE_NAMES[kind]} (got {type(obj[key]).__name__})")


def _string(value: Any, where: str, limit: int, errors: list[str]) -> bool:
    """Length and surrogate checks on a value already known (or not) to be a string."""
    if not isinstance(value, str):
        return False
    if len(value) > limit:
        errors.append(f"{where}: {len(value)} characters, over the limit of {limit}")
        return False
    if _SURROGATE.search(value):
        errors.append(f"{where}: unpaired surrogate (not storable as UTF-8)")
        return False
    return True


def _map(value: Any, where: str, value_limit: int, caps: Caps, errors: list[str]) -> None:
    """A label set or annotations: string → string, bounded in count and size."""
    if not isinstance(value, dict):
        return
    if len(value) > caps.max_labels:
        errors.append(f"{where}: {len(value)} entries, over the limit of {caps.max_labels}")
        return
    for name, v in value.items():
        if not name:
            errors.append(f"{where}: empty name")
            continue
        if not _string(name, f"{where}.{_key(name)}", caps.max_name_chars, errors):
            continue
        if not isinstance(v, str):
            errors.append(f"{where}.{name}: expected a string (got {type(v).__name__})")
        else:
            _string(v, f"{where}.{name}", value_limit, errors)


def _key(key: str) -> str:
    return _short(key) if len(key) > 64 or _SURROGATE.search(key) else key


def _short(value: Any) -> str:
    """A bounded, printable rendering of a value for an error line."""
    text = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
