"""Content digests of files and folders, for run records (what exactly was trained on what)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sre_llm.fsutil import sha256_ref


file_digest = sha256_ref  # ``sha256:<hex>`` of one file


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
