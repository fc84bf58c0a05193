"""Signed audit checkpoints: a chain rewritten, re-hashed end to end and committed still fails
`audit verify`, naming the checkpoint (seq and line); so does a checkpoint re-signed with an
unpinned key, and deleting the checkpoints. Real keys, a real git repository."""

from __future__ import annotations

import json
from pathlib import Path

from registry_support import (
    GOOD_METRICS,
    git,
    make_key,
    make_model,
    make_repo,
    sre,
    write_metrics,
)

from sre_llm import audit, signing


def _released(tmp_path: Path) -> Path:
    """register → sign (appends a checkpoint) → promote (commits the log)."""
    repo = make_repo(tmp_path)
    out = sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m", seed=3)),
              "--metrics", str(write_metrics(tmp_path / "eval.json", GOOD_METRICS)), "--no-sbom", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert sre("registry", "sign", "1.0.0", cwd=repo).returncode == 0
    assert sre("registry", "promote", "1.0.0", cwd=repo).returncode == 0
    return repo


def _records(repo: Path) -> list[dict]:
    return [json.loads(line) for line in (repo / "audit" / "audit.jsonl").read_text().splitlines()]


def _rewrite(repo: Path, records: list[dict], message: str = "tidy the audit log") -> None:
    """Re-hash the whole chain from the first record, as a careful forger would, and commit it."""
    prev = audit.GENESIS
    lines = []
    for rec in records:
        rec = {**rec, "prev_hash": prev}
        rec["hash"] = audit.record_hash(rec)
        prev = rec["hash"]
        lines.append(audit.canonical(rec) + b"\n")
    (repo / "audit" / "audit.jsonl").write_bytes(b"".join(lines))
    git(repo, "commit", "-qam", message)


def test_checkpoint_follows_sign_and_verifies(tmp_path):
    repo = _released(tmp_path)
    records = _records(repo)
    assert [r["action"] for r in records] == ["register", "sign", "checkpoint", "promote"]
    cp = records[2]
    pub = (repo / "keys" / "signing.pub.pem").read_bytes()
    assert cp["digests"] == {"head": records[1]["hash"]} and cp["details"]["head_seq"] == 2
    assert cp["details"]["key_id"] == signing.fingerprint(pub) and cp["details"]["public_key"] == pub.decode()
    out = sre("audit", "verify", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("4 records, chain intact (head seq 4), matches git HEAD (4 committed), "
                                       "1 signed checkpoint(s), sealed to seq 2")
    # The explicit command seals the promote record too.
    made = sre("audit", "checkpoint", "--spec", "specs/demo.yaml", "--json", cwd=repo)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["head_seq"] == 4
    data = json.loads(sre("audit", "verify", "--json", cwd=repo).stdout)
    assert (data["ok"], data["checkpoints"], data["sealed_seq"]) == (True, 2, 4)


def test_rewritten_rehashed_committed_chain_names_the_checkpoint(tmp_path):
    repo = _released(tmp_path)
    records = _records(repo)
    records[0]["details"]["gates_passed"] = not records[0]["details"]["gates_passed"]
    records[0]["actor"] = "Someone Else <x@example.org>"
    _rewrite(repo, records)
    assert audit.verify(repo / "audit" / "audit.jsonl", git(repo, "show", "HEAD:audit/audit.jsonl").encode()).problem \
        .kind == "checkpoint"
    out = sre("audit", "verify", "--json", cwd=repo)
    assert out.returncode == 1
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "audit_broken"
    head = audit.record_hash({**records[1], "prev_hash": audit.record_hash({**records[0], "prev_hash": audit.GENESIS})})
    assert error["message"].endswith(
        f"audit/audit.jsonl: line 3: checkpoint seq 3: its signature by {records[2]['details']['key_id']} does not "
        f"cover the chain as it reads now: records up to seq 2 were rewritten after it was signed (head now {head})")


def test_checkpoint_resigned_with_another_key_fails_the_pin(tmp_path):
    repo = _released(tmp_path)
    records = _records(repo)
    records[0]["actor"] = "Someone Else <x@example.org>"
    make_key(tmp_path / "b.pem", tmp_path / "b.pub.pem")
    # Re-hash up to the checkpoint, then sign the forged head with key B.
    prev = audit.GENESIS
    for rec in records[:2]:
        rec["prev_hash"] = prev
        rec["hash"] = prev = audit.record_hash(rec)
    sig, key_id, pem = signing.sign_blob(tmp_path / "b.pem", audit.checkpoint_payload(2, prev))
    records[2]["digests"]["head"] = prev
    records[2]["details"].update(signature=sig, key_id=f"sha256:{key_id}", public_key=pem)
    _rewrite(repo, records)
    out = sre("audit", "verify", cwd=repo)
    assert out.returncode == 1
    pinned = signing.fingerprint((repo / "keys" / "signing.pub.pem").read_bytes())
    assert out.stderr.strip().endswith(
        f"line 3: checkpoint seq 3: signed by sha256:{key_id}, which is not pinned (trusted: {pinned})")
    # Trusting B explicitly makes it pass: the pin is what decides.
    assert sre("audit", "verify", "--trusted-key", f"sha256:{key_id}", cwd=repo).returncode == 0


def test_deleting_the_checkpoints_is_caught(tmp_path):
    repo = _released(tmp_path)
    records = [r for r in _records(repo) if r["action"] != "checkpoint"]
    for i, rec in enumerate(records, start=1):
        rec["seq"] = i
    _rewrite(repo, records)
    out = sre("audit", "verify", cwd=repo)
    assert out.returncode == 1
    assert out.stderr.strip().endswith("line 2: sign record seq 2: signed with a key but no signed checkpoint follows "
                                       "it (`registry sign` appends one: checkpoints deleted?)")


def test_checkpoint_needs_a_key_and_records(tmp_path):
    repo = make_repo(tmp_path)
    out = sre("audit", "checkpoint", cwd=repo)
    assert out.returncode == 2 and "needs a signing key" in out.stderr
    out = sre("audit", "checkpoint", "--key", "keys/signing.pem", cwd=repo)
    assert out.returncode == 2 and out.stderr.strip().endswith("the audit log is empty; nothing to checkpoint")
