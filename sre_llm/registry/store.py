"""Content-addressed artifact store: a model directory is kept under the digest of its contents.

Layout of the local store (default ``<repo>/.cache/artifacts``; ``--store`` or
``$SRE_LLM_ARTIFACT_STORE`` choose another)::

    sha256/<tree digest>/…files…   a model directory, files read-only
    sha256/<blob digest>           a single file (an eval.json)
    tmp/put-<pid>-<random>/        staging; renamed into place only when complete

A tree's digest is the sha256 of its manifest, which is exactly what ``sha256sum`` prints for the
files (``<hex>  <relative path>`` per line, sorted by path), so ``sha256sum -c`` can check a copy by
hand. Stored content is never changed in place: a different byte is a different digest.

Remote stores (S3, OCI) implement :class:`ArtifactStore`; ``local_tree`` is where they download to.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from sre_llm.errors import BadInput, CheckFailed
from sre_llm.fsutil import _fsync_dir, sha256_hex

CHUNK = 1 << 20
SKIPPED_DIRS = {".git"}  # a model cloned from a hub repo carries its git metadata; it is not the model


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, POSIX separators
    sha256: str  # hex
    size: int


@dataclass(frozen=True)
class Tree:
    """A stored model directory: its digest and every file in it."""

    digest: str  # "sha256:<hex>"
    files: tuple[FileEntry, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def manifest_text(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    """The ``sha256sum``-format manifest a tree digest is taken over."""
    return "".join(f"{f.sha256}  {f.path}\n" for f in sorted(files, key=lambda f: f.path))


def tree_digest(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    return "sha256:" + hashlib.sha256(manifest_text(files).encode()).hexdigest()


def _hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise BadInput(f"{digest!r} is not a sha256 digest (sha256:<64 hex digits>)")
    return value


@runtime_checkable
class ArtifactStore(Protocol):
    """What the registry needs from a store. Implementations: :class:`LocalStore`,
    :class:`~sre_llm.registry.oci_store.OciStore` (an OCI repository, cached locally)."""

    kind: str

    def put_tree(self, src: Path, skip_top: tuple[str, ...] = ()) -> Tree:
        """Store the directory ``src`` (less top-level folders matching a ``skip_top`` glob); return
        its digest and files. Idempotent."""

    def put_blob(self, src: Path) -> str:
        """Store one file; return its digest. Idempotent."""

    def has(self, digest: str) -> bool:
        """Whether the store holds ``digest``."""

    def local_tree(self, digest: str) -> Path:
        """A local directory with the tree's files (remote stores download it first)."""

    def local_blob(self, digest: str) -> Path:
        """A local path of the blob."""

    def check_tree(self, digest: str, files: tuple[FileEntry, ...] | list[FileEntry]) -> list[str]:
        """Re-hash a stored tree against its recorded files; one line per difference."""


class LocalStore:
    """A content-addressed store in a local directory (see the module docstring)."""

    kind = "local"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _final(self, digest: str) -> Path:
        return self.root / "sha256" / _hex(digest)

    def has(self, digest: str) -> bool:
        return self._final(digest).exists()

    def local_tree(self, digest: str) -> Path:
        path = self._final(digest)
        if not path.is_dir():
            raise CheckFailed(f"artifact {digest} is not in the store {self.root}")
        return path

    def local_blob(self, digest: str) -> Path:
        path = self._final(digest)
        if not path.is_file():
            raise CheckFailed(f"blob {digest} is not in the store {self.root}")
        return path

    def _staging(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        self._sweep(tmp)
        return tmp / f"put-{os.getpid()}-{uuid.uuid4().hex[:12]}"

    @staticmethod
    def _sweep(tmp: Path) -> None:
        """Remove staging left by processes that died (SIGKILL, power loss) half-way."""
        for entry in tmp.glob("put-*"):
            try:
                pid = int(entry.name.split("-")[1])
                os.kill(pid, 0)
            except ProcessLookupError:
                _remove(entry)
            except (ValueError, IndexError, PermissionError):
                continue

    def put_tree(self, src: Path, skip_top: tuple[str, ...] = ()) -> Tree:
        """Store the files under ``src``; top-level folders matching a ``skip_top`` glob are left out."""
        src = Path(src)
        if not src.is_dir():
            raise BadInput(f"{src}: not a directory")
        staging = self._staging()
        try:
            staging.mkdir()
            files = tuple(sorted((_copy_file(path, rel, staging / rel) for path, rel in _walk(src, skip_top)),
                                 key=lambda f: f.path))
            if not files:
                raise BadInput(f"{src}: no files to store")
            tree = Tree(tree_digest(files), files)
            _fsync_dir(staging)
            self._install(staging, self._final(tree.digest))
            return tree
        finally:
            if staging.exists():
                _remove(staging)

    def put_blob(self, src: Path) -> str:
        src = Path(src)
        if not src.is_file():
            raise BadInput(f"{src}: no such file")
        staging = self._staging()
        try:
            entry = _copy_file(src, src.name, staging)
            digest = "sha256:" + entry.sha256
            self._install(staging, self._final(digest))
            return digest
        finally:
            if staging.exists():
                _remove(staging)

    @staticmethod
    def _install(staging: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            return  # the same content is already stored (content addressing makes this exact)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.exists():
                raise
        _fsync_dir(final.parent)

    def check_tree(self, digest: str, files: tuple[FileEntry, ...] | list[FileEntry]) -> list[str]:
        """Re-hash a stored tree against its recorded files; one line per difference."""
        root = self.local_tree(digest)
        found = {rel: path for path, rel in _walk(root)}
        expected = {f.path: f for f in files}
        problems = [f"missing file {p}" for p in sorted(set(expected) - set(found))]
        problems += [f"unexpected file {p}" for p in sorted(set(found) - set(expected))]
        common = sorted(set(found) & set(expected))
        # hashlib releases the GIL on large buffers, so threads hash several files at once.
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
            digests = dict(zip(common, pool.map(lambda rel: sha256_hex(found[rel]), common)))
        problems += [f"content of {rel} changed" for rel in common if digests[rel] != expected[rel].sha256]
        return problems


def _walk(src: Path, skip_top: tuple[str, ...] = ()):
    """(path, relative POSIX path) of every file under ``src``, sorted, following file symlinks."""
    for dirpath, dirnames, filenames in os.walk(src):
        top = dirpath == str(src)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS
                             and not (top and any(fnmatch.fnmatchcase(d, g) for g in skip_top)))
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                raise BadInput(f"{os.path.join(dirpath, d)}: symlinked directories are not stored; copy it")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            yield path, path.relative_to(src).as_posix()


def _copy_file(src: Path, rel: str, dest: Path) -> FileEntry:
    """Copy ``src`` to ``dest`` while hashing it (one read), fsync, make it read-only."""
    try:
        mode = os.stat(src).st_mode
    except FileNotFoundError:
        raise BadInput(f"{src}: broken symlink") from None
    if not stat.S_ISREG(mode):
        raise BadInput(f"{src}: not a regular file (only files and folders can be stored)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    h, size = hashlib.sha256(), 0
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    os.chmod(dest, 0o444)
    return FileEntry(rel, h.hexdigest(), size)




def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
