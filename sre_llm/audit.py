"""Append-only, hash-chained audit log (JSON Lines): who did what, when, to which digests.

Every record carries ``prev_hash`` (the ``hash`` of the record before it; a run of zeros for the
first) and its own ``hash`` = sha256 over the canonical JSON of the record without ``hash``. Editing
a record breaks its hash; deleting, inserting or reordering breaks the chain and the ``seq``
numbering. Cutting records off the end keeps a valid chain, so :func:`verify` also compares the
log with the copy committed at git HEAD: what was committed must still be a prefix of the file.

Any stage appends with :func:`append` (one line, fsynced, under an exclusive lock so concurrent
writers cannot fork the chain)::

    from sre_llm import audit
    audit.append("train", "sre-remediation-tiny@0.1.0", {"dataset": "sha256:…"}, root=".")
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput, CheckFailed

DEFAULT_PATH = "audit/audit.jsonl"
GENESIS = "sha256:" + "0" * 64
FIELDS = ("seq", "time", "actor", "action", "subject", "digests", "details", "prev_hash", "hash")


def log_path(root: str | Path = ".", path: str | Path | None = None) -> Path:
    """Where the log lives: ``path``, else ``$SRE_LLM_AUDIT_LOG``, else ``<root>/audit/audit.jsonl``."""
    if path is not None:
        return Path(path)
    if os.environ.get("SRE_LLM_AUDIT_LOG"):
        return Path(os.environ["SRE_LLM_AUDIT_LOG"])
    return Path(root) / DEFAULT_PATH


def canonical(data: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``record`` without its ``hash`` (``prev_hash`` included)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def now() -> str:
    """UTC time as ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(
    action: str,
    subject: str,
    digests: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
    *,
    root: str | Path = ".",
    path: str | Path | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Append one record and return it. The line is on disk (fsynced) when this returns."""
    if not action or not subject:
        raise BadInput("audit records need an action and a subject")
    target = log_path(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if actor is None:
        from sre_llm.gitops import actor as git_actor

        actor = git_actor(root)
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = _last_line(fd)
        if last is None:
            seq, prev = 1, GENESIS
        else:
            try:
                tail = json.loads(last)
                seq, prev = int(tail["seq"]) + 1, str(tail["hash"])
            except (ValueError, KeyError, TypeError):
                raise CheckFailed(
                    f"{target}: the last record is damaged; run `sre-llm audit verify` before appending"
                ) from None
        record: dict[str, Any] = {
            "seq": seq,
            "time": now(),
            "actor": actor,
            "action": action,
            "subject": subject,
            "digests": dict(sorted((digests or {}).items())),
            "details": dict(details or {}),
            "prev_hash": prev,
        }
        record["hash"] = record_hash(record)
        os.write(fd, canonical(record) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock
    return record


def _last_line(fd: int) -> bytes | None:
    """The last complete line of the file, reading backwards in blocks (logs grow without bound)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise CheckFailed("audit log ends with a partial record (torn write?); run `sre-llm audit verify`")
    end, buf = size - 1, b""
    while end > 0:
        start = max(0, end - 8192)
        buf = os.pread(fd, end - start, start) + buf
        end = start
        if b"\n" in buf:
            break
    return buf.rsplit(b"\n", 1)[-1]


@dataclass
class Problem:
    """The first bad record: its line (1-based), its seq when readable, and what is wrong."""

    line: int
    seq: int | None
    reason: str

    def __str__(self) -> str:
        which = f"record seq {self.seq}" if self.seq is not None else "record"
        return f"line {self.line}: {which}: {self.reason}"


@dataclass
class Report:
    """Outcome of :func:`verify`."""

    path: str
    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    committed_records: int | None = None  # records in the copy at git HEAD (None: not tracked)
    problem: Problem | None = None
    actions: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def verify(path: str | Path, committed: bytes | None = None) -> Report:
    """Check every record's hash, the chain and the numbering; stop at the first bad record.

    ``committed`` is the log as committed in git (see :func:`verify_in_repo`); when given, the
    file must start with exactly those bytes, which catches records cut off the end.
    """
    path = Path(path)
    report = Report(str(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no audit log here") from None
    if data and not data.endswith(b"\n"):
        report.problem = Problem(data.count(b"\n") + 1, None, "partial last line (torn write or truncation)")
        return report
    prev, expected_seq = GENESIS, 1
    for lineno, raw in enumerate(data.splitlines(), start=1):
        problem = _check_line(lineno, raw, prev, expected_seq)
        if problem is not None:
            report.problem = problem
            return report
        rec = json.loads(raw)
        prev, expected_seq = rec["hash"], rec["seq"] + 1
        report.records += 1
        report.head_seq, report.head_hash = rec["seq"], rec["hash"]
        report.actions[rec["action"]] = report.actions.get(rec["action"], 0) + 1
    if committed is not None:
        report.committed_records = committed.count(b"\n")
        if not data.startswith(committed):
            line = _first_difference(data, committed)
            report.problem = Problem(
                line, None, "differs from the log committed at git HEAD (committed records were changed or removed)"
            )
    return report


def _check_line(lineno: int, raw: bytes, prev: str, expected_seq: int) -> Problem | None:
    try:
        rec = json.loads(raw)
    except ValueError:
        return Problem(lineno, None, "not a JSON object")
    if not isinstance(rec, dict):
        return Problem(lineno, None, "not a JSON object")
    seq = rec.get("seq") if isinstance(rec.get("seq"), int) else None
    missing = [f for f in FIELDS if f not in rec]
    extra = sorted(set(rec) - set(FIELDS))
    if missing or extra:
        what = f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}"
        return Problem(lineno, seq, f"malformed record ({what})")
    if rec["hash"] != record_hash(rec):
        return Problem(lineno, seq, "hash does not match the record's content (record edited)")
    if rec["prev_hash"] != prev:
        return Problem(
            lineno, seq, "prev_hash does not match the record before it (records deleted, inserted or reordered)"
        )
    if seq != expected_seq:
        return Problem(lineno, seq, f"seq {seq} where {expected_seq} was expected (records deleted, inserted or reordered)")
    return None


def _first_difference(data: bytes, committed: bytes) -> int:
    for lineno, (a, b) in enumerate(zip(data.splitlines(), committed.splitlines()), start=1):
        if a != b:
            return lineno
    return min(data.count(b"\n"), committed.count(b"\n")) + 1


def verify_in_repo(root: str | Path = ".", path: str | Path | None = None) -> Report:
    """:func:`verify` the log of the repository at ``root``, against its copy at git HEAD when tracked."""
    from sre_llm import gitops

    target = log_path(root, path)
    committed = None
    try:
        rel = target.resolve().relative_to(Path(root).resolve())
    except ValueError:
        rel = None
    if rel is not None and gitops.is_repo(root):
        committed = gitops.committed_bytes(root, rel.as_posix())
    return verify(target, committed)
