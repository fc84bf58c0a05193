"""Quality: catalog validation and normalized duplicate keys.

Two examples are duplicates when their rendered input and output are equal (exact) or equal
after volatile parts are masked (normalized): pod-template and pod hashes
(``web-7d4f9c6b8-x2x9q`` → ``web<v>``), timestamps, UUIDs, long hex ids and long numbers,
and the labels that only ever carry such values (:data:`VOLATILE_LABELS`).
The first of a set of duplicates in time order is kept, so which one survives does not depend on
the order sources are read in. The incident group (the split key) is the normalized label lines
of the example, or an explicit ``incident`` id: identical examples always share a split.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping

from sre_llm.catalog import validate_parameters

#: Labels that identify one occurrence rather than the problem; dropped from inputs.
VOLATILE_LABELS = frozenset({
    "pod_template_hash", "controller_revision_hash", "uid", "pod_uid", "container_id", "image_id",
    "timestamp", "time", "started_at", "fingerprint",
})

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet for generated name suffixes
# Every branch starts with a literal character, which lets the regex engine skip ahead quickly
# (the pipeline budget is a few microseconds per alert). A UUID keeps its first 8 characters.
_VOLATILE = re.compile(
    rf"-(?:[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}\b"  # deployment pod: web-7d4f9c6b8-x2x9q
    r"|\d{6,}\b"  # epoch seconds, CronJob run suffixes
    r"|\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?"  # timestamps (after the year)
    r"|[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"  # UUIDs
    r"|[0-9a-f]{12,}\b)"  # hex ids
    r"|: ?[0-9a-f]{12,}\b|@[0-9a-f]{12,}\b|/[0-9a-f]{12,}\b|=[0-9a-f]{12,}\b"  # digests, container ids
)


def normalize(text: str) -> str:
    """``text`` with volatile parts masked (used for the normalized duplicate key)."""
    return _VOLATILE.sub("<v>", text)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def visible_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels as the model sees them: volatile ones dropped."""
    if VOLATILE_LABELS.isdisjoint(labels):
        return labels  # type: ignore[return-value]
    return {k: v for k, v in labels.items() if k not in VOLATILE_LABELS}


def problems(function: str, params: Any) -> list[str]:
    """Catalog problems of a label (unknown function, missing or ill-typed parameters)."""
    return validate_parameters(function, params)
