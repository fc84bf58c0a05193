"""Semantic versions: parse, order, bump, and which bump a change calls for.

The rules the registry applies (docs/registry.md):

* **major** — a different base model (name, path or revision): outputs are not comparable.
* **minor** — the same base, different training data (dataset digest).
* **patch** — the same base and data, a recipe change (hyper-parameters, prompt template…).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import total_ordering
from typing import Any, Literal

from sre_llm.errors import BadInput

Bump = Literal["major", "minor", "patch"]
BUMPS: tuple[Bump, ...] = ("major", "minor", "patch")

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$")


@total_ordering
class SemVer:
    """A parsed semantic version, ordered as semver.org §11 says (build metadata ignored)."""

    __slots__ = ("build", "major", "minor", "patch", "pre")

    def __init__(self, text: str):
        m = _SEMVER.match(text)
        if not m:
            raise BadInput(f"{text!r} is not a semantic version MAJOR.MINOR.PATCH such as 1.0.0")
        self.major, self.minor, self.patch = int(m[1]), int(m[2]), int(m[3])
        self.pre = tuple(m[4].split(".")) if m[4] else ()
        self.build = m[5] or ""

    def _key(self) -> tuple:
        # A pre-release sorts before its release; numeric identifiers sort below alphanumeric ones.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + ".".join(self.pre)
        return text + (f"+{self.build}" if self.build else "")

    def bump(self, kind: Bump) -> SemVer:
        """The next version of ``kind``; a pre-release bumps to its own release first for patch."""
        if kind == "major":
            return SemVer(f"{self.major + 1}.0.0")
        if kind == "minor":
            return SemVer(f"{self.major}.{self.minor + 1}.0")
        if self.pre:
            return SemVer(f"{self.major}.{self.minor}.{self.patch}")
        return SemVer(f"{self.major}.{self.minor}.{self.patch + 1}")


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Versions in semver order, oldest first."""
    return sorted(versions, key=SemVer)


def next_version(existing: Iterable[str], start: str, kind: Bump) -> str:
    """The version ``kind`` above the highest of ``existing`` and ``start``."""
    highest = max([SemVer(v) for v in existing] + [SemVer(start)])
    return str(highest.bump(kind))


def suggest_bump(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> Bump:
    """Which bump the change from ``previous`` to ``current`` calls for (see the module docstring).

    Both are ``{"base_model": {...}, "dataset": {"digest": ...}}`` as the index stores them.
    """
    if previous is None:
        return "major"
    if dict(previous.get("base_model") or {}) != dict(current.get("base_model") or {}):
        return "major"
    if (previous.get("dataset") or {}).get("digest") != (current.get("dataset") or {}).get("digest"):
        return "minor"
    return "patch"
