"""Atomic file writes (temp file in the same folder, fsync, rename: nothing half-written remains) and
file digests, read a chunk at a time."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


CHUNK = 1 << 20


def sha256_hex(path: str | Path) -> str:
    """The sha256 of a file's bytes as hex, read 1 MiB at a time (model shards do not fit twice)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_ref(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes: how run records, signatures and the registry name a file."""
    return "sha256:" + sha256_hex(path)


def user_cache(name: str) -> Path:
    """A folder of the user's cache for sre-llm: ``$SRE_LLM_CACHE/NAME``, else
    ``$XDG_CACHE_HOME/sre-llm/NAME``, else ``~/.cache/sre-llm/NAME`` (not created here)."""
    if os.environ.get("SRE_LLM_CACHE"):
        return Path(os.environ["SRE_LLM_CACHE"]) / name
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sre-llm" / name
