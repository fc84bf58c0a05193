"""Stable split by incident: a pure function of the group key and the fractions.

``sha256("sre-llm/split/v1\\0" + group key)`` read as a number in [0, 1) picks train, validation
or test against the cumulative fractions. Nothing else goes in, so:

- one incident never lands in two splits (no leak from train into test);
- adding data never moves an example that was already there (continuous learning compares
  models on a test split that only grows);
- changing the fractions in the spec does move examples; the card records the fractions.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")
_SALT = b"sre-llm/split/v1\0"
_SCALE = float(1 << 64)


def group_digest(group: str) -> bytes:
    """The salted sha256 of a group key (what the pipeline keeps instead of the key)."""
    return hashlib.sha256(_SALT + group.encode()).digest()


def position(group: str) -> float:
    """Where ``group`` falls in [0, 1)."""
    return int.from_bytes(group_digest(group)[:8], "big") / _SCALE


def assign(group: str, train: float, validation: float) -> str:
    """``train`` / ``validation`` / ``test`` for a group key."""
    return assign_digest(group_digest(group), train, validation)


def assign_digest(digest: bytes, train: float, validation: float) -> str:
    """``assign`` for a digest from :func:`group_digest`."""
    x = int.from_bytes(digest[:8], "big") / _SCALE
    if x < train:
        return "train"
    if x < train + validation:
        return "validation"
    return "test"
