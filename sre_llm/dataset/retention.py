"""Retention: ``sre-llm dataset prune`` deletes raw payloads and dataset folders past
``dataset.retention``; :func:`rewrite_locked` is the one way a store file is rewritten (prune and
``forget`` both use it).

Concurrency with a running receiver: a store file is rewritten to a temporary file, fsync'd and
renamed over the original while this process holds ``flock(LOCK_EX)`` on the original. The
receiver opens the file per write; a writer that takes ``flock(LOCK_SH)`` after opening and
re-opens when the path no longer names the inode it locked never loses a line. One that does
not lock can append to the old inode between our read and the rename: those bytes are read back
from the old inode after the rename and appended (filtered) to the new file, so a line is lost
only if its writer opened the file before the rename and wrote more than :data:`DRAIN_S` after
it; none can be once the receiver locks.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from sre_llm.fsutil import write_atomic

DRAIN_S = 0.2


def rewrite_locked(path: Path, keep: Callable[[str], str | None]) -> tuple[int, int]:
    """Rewrite a JSONL file line by line (``keep`` returns the line to write, or None to drop it),
    atomically and under ``flock`` (see the module docstring). Returns (lines read, lines changed
    or dropped)."""
    changed = seen = 0

    def transform(data: bytes) -> bytes:
        nonlocal changed, seen
        out = []
        for raw in data.decode("utf-8", errors="surrogateescape").splitlines(keepends=True):
            seen += 1
            new = keep(raw)
            if new != raw:
                changed += 1
            if new is not None:
                out.append(new)
        return "".join(out).encode("utf-8", errors="surrogateescape")

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read()
        read = len(data)
        body = transform(data)
        if changed == 0:
            return seen, 0
        write_atomic(path, body, mode=os.fstat(fd).st_mode & 0o777)
        # A writer that does not lock may have appended to the old inode meanwhile.
        deadline = time.monotonic() + DRAIN_S
        while True:
            size = os.fstat(fd).st_size
            if size > read:
                os.lseek(fd, read, os.SEEK_SET)
                late = os.read(fd, size - read)
                read = size
                extra = transform(late)
                if extra:
                    app = os.open(path, os.O_WRONLY | os.O_APPEND)
                    try:
                        os.write(app, extra)
                        os.fsync(app)
                    finally:
                        os.close(app)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return seen, changed
    finally:
        os.close(fd)



# ── retention ───────────────────────────────────────────────────────────────────────────────────


def _received(line: str) -> float | None:
    try:
        stamp = json.loads(line)["received"]
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def prune(release: Any, root: str | Path = ".", now: float | None = None) -> dict:
    """Delete raw payloads received longer ago than ``dataset.retention.raw`` and dataset folders
    built longer ago than ``dataset.retention.datasets`` (never the one ``current`` points at)."""
    from sre_llm.dataset.build import _under
    from sre_llm.dataset.forget import _remove_folder, dataset_folders
    from sre_llm.spec.types import duration_seconds

    root = Path(root)
    now = time.time() if now is None else now
    ret = release.spec.dataset.retention
    out: dict = {"raw": [], "datasets": [], "retention": {"raw": ret.raw, "datasets": ret.datasets}}
    if ret.raw:
        cutoff = now - duration_seconds(ret.raw)
        for source in release.spec.dataset.sources:
            if source.type != "alertmanager" or not _under(root, source.store).is_dir():
                continue
            for path in sorted(_under(root, source.store).glob("*.jsonl")):
                def keep(line: str) -> str | None:
                    t = _received(line)
                    return None if t is not None and t < cutoff else line
                _, dropped = rewrite_locked(path, keep)
                if dropped:
                    out["raw"].append({"file": str(path), "payloads_removed": dropped})
    if ret.datasets:
        cutoff = now - duration_seconds(ret.datasets)
        for path in dataset_folders(root):
            current = path.parent / "current"
            if current.is_symlink() and os.readlink(current) == path.name:
                continue
            if (path / "dataset_card.json").stat().st_mtime < cutoff:
                _remove_folder(path)
                out["datasets"].append(str(path))
    return out
