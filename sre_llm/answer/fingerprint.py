"""Prometheus' label-set fingerprint: how the gateway and the collector name the same alert.

agent-sre hands the gateway an alert's labels, never Alertmanager's ``fingerprint``; Alertmanager's
webhook carries the fingerprint. Both are the same function of the label set (Prometheus'
``model.LabelSet.Fingerprint()``, which Alertmanager prints as 16 hex digits), so the gateway's
decision and Alertmanager's ``resolved`` notification join on it without either side guessing.

The hash: FNV-1a 64 over the label names in byte order, each name and value followed by the
separator byte 0xff; the empty set is FNV's offset basis.
"""

from __future__ import annotations

from collections.abc import Mapping

_OFFSET = 14695981039346656037
_PRIME = 1099511628211
_MASK = (1 << 64) - 1


def _add(h: int, data: bytes) -> int:
    for byte in data:
        h = ((h ^ byte) * _PRIME) & _MASK
    return h


def fingerprint_int(labels: Mapping[str, str]) -> int:
    """The fingerprint as Prometheus' uint64."""
    h = _OFFSET
    # Go sorts label names as byte strings: UTF-8 bytes sort as code points do.
    for name in sorted(labels, key=lambda n: n.encode()):
        h = _add(h, name.encode())
        h = _add(h, b"\xff")
        h = _add(h, str(labels[name]).encode())
        h = _add(h, b"\xff")
    return h


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's ``fingerprint`` field for an alert with these labels (16 lower-case hex digits)."""
    return f"{fingerprint_int(labels):016x}"
