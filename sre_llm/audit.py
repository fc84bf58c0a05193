"""Append-only, hash-chained audit log (JSON Lines): who did what, when, to which digests.

Every record carries ``prev_hash`` (the ``hash`` of the record before it; a run of zeros for the
first) and its own ``hash`` = sha256 over the canonical JSON of the record without ``hash``. Editing
a record breaks its hash; deleting, inserting or reordering breaks the chain and the ``seq``
numbering. Cutting records off the end keeps a valid chain, so :func:`verify` also compares the
log with the copy committed at git HEAD: what was committed must still be a prefix of the file.

A hash chain that is rewritten and re-hashed end to end is self-consistent, and once committed
even the comparison with git HEAD passes. Signed checkpoints anchor it outside the repository's
history: :func:`checkpoint` appends a record whose ECDSA signature (the release key, via
:mod:`sre_llm.signing`) covers the chain head before it (seq and hash). :func:`verify` checks each
checkpoint's signature against the pinned keys over the chain *as it reads now*, so rewriting any
record before a checkpoint fails there, naming it; a checkpoint re-signed with another key fails
the pin; and every key/certificate ``sign`` record must be followed by a checkpoint
(``registry sign`` appends one), so deleting the checkpoints fails too.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput, CheckFailed

DEFAULT_PATH = "audit/audit.jsonl"
GENESIS = "sha256:" + "0" * 64
FIELDS = ("seq", "time", "actor", "action", "subject", "digests", "details", "prev_hash", "hash")
CHECKPOINT = "checkpoint"
CHECKPOINT_TYPE = "sre-llm/audit-checkpoint/v1"
_Build = Callable[[int, str], tuple[str, str, Mapping[str, str], Mapping[str, Any]]]


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
    return _append(root, path, actor, lambda seq, prev: (action, subject, digests or {}, details or {}))


def checkpoint_payload(head_seq: int, head_hash: str) -> bytes:
    """The bytes a checkpoint signs: the chain head it covers."""
    return canonical({"type": CHECKPOINT_TYPE, "head_seq": head_seq, "head_hash": head_hash})


def checkpoint(private_key: str | Path, *, root: str | Path = ".", path: str | Path | None = None,
               actor: str | None = None) -> dict[str, Any]:
    """Append a checkpoint record signing the current chain head with the EC key at ``private_key``.

    The head is read and signed under the log's lock, so the checkpoint covers exactly the record
    before it. The record carries the public key and its id; :func:`verify` trusts it only when
    that id is pinned.
    """
    from sre_llm import signing

    def build(seq: int, prev: str):
        if seq == 1:
            raise BadInput(f"{log_path(root, path)}: the audit log is empty; nothing to checkpoint")
        signature, key_id, public_pem = signing.sign_blob(Path(private_key), checkpoint_payload(seq - 1, prev))
        return CHECKPOINT, "audit-log", {"head": prev}, {
            "head_seq": seq - 1, "algorithm": "ecdsa-sha256", "key_id": f"sha256:{key_id}",
            "public_key": public_pem, "signature": signature}

    return _append(root, path, actor, build)


def _append(root: str | Path, path: str | Path | None, actor: str | None, build: _Build) -> dict[str, Any]:
    """Append the record ``build(seq, prev_hash)`` describes, under an exclusive lock."""
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
        action, subject, digests, details = build(seq, prev)
        record: dict[str, Any] = {
            "seq": seq,
            "time": now(),
            "actor": actor,
            "action": action,
            "subject": subject,
            "digests": dict(sorted(digests.items())),
            "details": dict(details),
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
    kind: str = "record"

    def __str__(self) -> str:
        which = f"{self.kind} seq {self.seq}" if self.seq is not None else self.kind
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
    checkpoints: int = 0  # signed checkpoints that verified against the pinned keys
    sealed_seq: int = 0  # the head seq the last of them covers

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def verify(path: str | Path, committed: bytes | None = None, pins: Sequence[str] | None = None) -> Report:
    """Check every record's hash, the chain, the numbering and every checkpoint; stop at the first
    bad record.

    ``committed`` is the log as committed in git (see :func:`verify_in_repo`); when given, the
    file must start with exactly those bytes, which catches records cut off the end. ``pins`` are
    the fingerprints (``sha256:<hex>``) whose checkpoint signatures are trusted; None checks each
    checkpoint only against the key it carries (integrity, not authenticity: ``sre-llm audit
    verify`` always passes the pins).
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
    prev, expected_seq, unsealed = GENESIS, 1, None
    for lineno, raw in enumerate(data.splitlines(), start=1):
        problem = _check_line(lineno, raw, prev, expected_seq)
        rec = json.loads(raw) if problem is None else {}
        if problem is None and rec["action"] == CHECKPOINT:
            problem = _check_checkpoint(lineno, rec, prev, pins)
            report.checkpoints, report.sealed_seq, unsealed = report.checkpoints + 1, rec["seq"] - 1, None
        if problem is not None:
            report.problem = problem
            return report
        if unsealed is None and rec["action"] == "sign" and rec["details"].get("method") in ("key", "certificate"):
            unsealed = (lineno, rec["seq"])
        prev, expected_seq = rec["hash"], rec["seq"] + 1
        report.records += 1
        report.head_seq, report.head_hash = rec["seq"], rec["hash"]
        report.actions[rec["action"]] = report.actions.get(rec["action"], 0) + 1
    if unsealed is not None:
        report.problem = Problem(*unsealed, "signed with a key but no signed checkpoint follows it "
                                 "(`registry sign` appends one: checkpoints deleted?)", kind="sign record")
        return report
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


def _check_checkpoint(lineno: int, rec: Mapping[str, Any], prev: str, pins: Sequence[str] | None) -> Problem | None:
    """A checkpoint must be signed by a pinned key over the chain head before it, as it reads now."""
    from sre_llm import signing

    details, seq = rec["details"], rec["seq"]
    pem, signature = details.get("public_key"), details.get("signature")
    if not isinstance(pem, str) or not isinstance(signature, str) or details.get("algorithm") != "ecdsa-sha256":
        return Problem(lineno, seq, "malformed (needs algorithm ecdsa-sha256, public_key, signature)", CHECKPOINT)
    try:
        signer = signing.fingerprint(pem.encode())
    except ValueError:
        return Problem(lineno, seq, "its public_key is not a PEM public key", CHECKPOINT)
    if pins is not None and signer not in pins:
        trusted = ", ".join(pins) or "none: pin signing.trusted_keys or signing.public_key in the spec, or pass --trusted-key"
        return Problem(lineno, seq, f"signed by {signer}, which is not pinned (trusted: {trusted})", CHECKPOINT)
    if not signing.verify_blob(pem, checkpoint_payload(seq - 1, prev), signature):
        return Problem(lineno, seq, f"its signature by {signer} does not cover the chain as it reads now: records "
                       f"up to seq {seq - 1} were rewritten after it was signed (head now {prev})", CHECKPOINT)
    return None


def _first_difference(data: bytes, committed: bytes) -> int:
    for lineno, (a, b) in enumerate(zip(data.splitlines(), committed.splitlines()), start=1):
        if a != b:
            return lineno
    return min(data.count(b"\n"), committed.count(b"\n")) + 1


def verify_in_repo(root: str | Path = ".", path: str | Path | None = None, pins: Sequence[str] | None = None) -> Report:
    """:func:`verify` the log of the repository at ``root``, against its copy at git HEAD when tracked,
    its checkpoints against ``pins``."""
    from sre_llm import gitops

    target = log_path(root, path)
    committed = None
    try:
        rel = target.resolve().relative_to(Path(root).resolve())
    except ValueError:
        rel = None
    if rel is not None and gitops.is_repo(root):
        committed = gitops.committed_bytes(root, rel.as_posix())
    return verify(target, committed, pins)
