"""Runbook action logs: agent-sre's own record of what it ran, one JSON object per line.

The format (documented in docs/dataset.md)::

    {"timestamp": "2025-05-01T12:00:40Z",            # when the LambdaFunction ran (RFC 3339)
     "lambda_function": "pod-restart",               # catalog name
     "parameters": {"name": "...", "namespace": "..."},
     "outcome": "success",                           # success | failure | unknown
     "fingerprint": "c0ffee0123456789",              # the alert's Alertmanager fingerprint
     "labels": {"alertname": "...", "namespace": "..."},   # or enough labels to join by name
     "alert": {"labels": {...}, "annotations": {...}, "startsAt": "..."},   # optional: the alert itself
     "incident": "INC-123",                          # optional: groups examples for the split
     "message": "..."}                               # optional: what the function answered

At least one of ``fingerprint``, ``labels`` or ``alert`` must link the entry to its alert.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Iterator

from sre_llm.dataset.records import Quarantined, read_jsonl
from sre_llm.errors import BadInput


def read_logs(pattern: str, root: str | Path = ".") -> Iterator[dict | Quarantined]:
    """Action records from every file matching ``pattern`` (relative to ``root``), sorted by name."""
    full = pattern if Path(pattern).is_absolute() else str(Path(root) / pattern)
    paths = sorted(glob.glob(full))
    if not paths:
        raise BadInput(f"runbook source {pattern}: no file matches")
    for path in paths:
        for r in read_jsonl(path, source="runbook"):
            if isinstance(r, dict):
                r.setdefault("kind", "action")
            yield r
