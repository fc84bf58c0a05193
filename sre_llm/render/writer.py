"""The one writer of rendered files: compares with the disk, then writes atomically.

``plan`` reads only; ``apply`` performs a plan. ``render --check`` is ``plan`` with no ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from sre_llm.fsutil import write_atomic
from sre_llm.render.render import RenderedFile

Status = Literal["created", "unchanged", "changed", "stale"]


@dataclass(frozen=True)
class Change:
    path: str
    status: Status
    text: str | None = None  # new content (None for stale files)

    @property
    def drift(self) -> bool:
        return self.status != "unchanged"


def plan(files: Iterable[RenderedFile], base: str | Path = ".") -> list[Change]:
    """Compare rendered files with what is on disk under ``base``.

    Each folder that receives files is owned by sre-llm: any other file in it is ``stale``.
    """
    base = Path(base)
    files = list(files)
    changes: list[Change] = []
    for f in files:
        target = base / f.path
        if not target.exists():
            changes.append(Change(f.path, "created", f.text))
        else:
            same = target.read_bytes() == f.text.encode()
            changes.append(Change(f.path, "unchanged" if same else "changed", f.text))
    wanted = {f.path for f in files}
    for folder in sorted({str(Path(f.path).parent) for f in files}):
        root = base / folder
        if not root.is_dir():
            continue
        for existing in sorted(root.rglob("*")):
            rel = (Path(folder) / existing.relative_to(root)).as_posix()
            if existing.is_file() and rel not in wanted and not existing.name.startswith("."):
                changes.append(Change(rel, "stale"))
    return changes


def apply(changes: Iterable[Change], base: str | Path = ".") -> None:
    """Write created/changed files atomically and remove stale ones."""
    base = Path(base)
    for c in changes:
        if c.status in ("created", "changed"):
            assert c.text is not None  # noqa: S101 - an invariant for the type checker, not a security check
            write_atomic(base / c.path, c.text)
        elif c.status == "stale":
            (base / c.path).unlink(missing_ok=True)
