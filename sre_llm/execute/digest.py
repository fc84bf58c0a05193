"""Content digests of files and folders, for run records (what exactly was trained on what)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def tree_digest(folder: str | Path, skip: tuple[str, ...] = ()) -> str:
    """One digest over every file's relative path and content, in sorted order; names in ``skip``
    (anywhere in the path) are left out, e.g. caches LLaMA Factory writes next to the data."""
    root = Path(folder)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or any(part in skip or part.startswith(".") for part in rel.parts):
            continue
        h.update(rel.as_posix().encode() + b"\0" + file_digest(p).encode() + b"\n")
    return "sha256:" + h.hexdigest()


def tree_files(folder: str | Path) -> dict[str, str]:
    """``{relative path: digest}`` of every file under ``folder`` (sorted)."""
    root = Path(folder)
    return {p.relative_to(root).as_posix(): file_digest(p) for p in sorted(root.rglob("*")) if p.is_file()}
