"""The hash-chained audit log: appends, and every kind of tampering caught at the right line."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from sre_llm import audit
from sre_llm.errors import CheckFailed

SRE = [sys.executable, "-m", "sre_llm"]


def _log(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "audit.jsonl"
    for i in range(1, n + 1):
        audit.append("register", f"m@0.{i}.0", {"artifact": f"sha256:{i:064x}"}, {"n": i}, path=path, actor="tester")
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_records_are_chained_and_canonical(tmp_path):
    path = _log(tmp_path, 3)
    recs = [json.loads(line) for line in _lines(path)]
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert recs[0]["prev_hash"] == "sha256:" + "0" * 64
    assert recs[1]["prev_hash"] == recs[0]["hash"] and recs[2]["prev_hash"] == recs[1]["hash"]
    assert set(recs[0]) == set(audit.FIELDS)
    assert recs[0]["actor"] == "tester" and recs[0]["action"] == "register" and recs[0]["subject"] == "m@0.1.0"
    assert recs[0]["digests"] == {"artifact": "sha256:" + "0" * 63 + "1"}
    for r in recs:
        assert r["hash"] == audit.record_hash(r)
    # Lines are the canonical form itself: sorted keys, no spaces.
    assert _lines(path)[0] == audit.canonical(recs[0]) + b"\n"
    report = audit.verify(path)
    assert report.ok and report.records == 3 and report.head_seq == 3 and report.head_hash == recs[2]["hash"]
    assert report.actions == {"register": 3}


def test_actor_defaults_to_git_identity_or_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SRE_LLM_ACTOR", "ci@example")
    rec = audit.append("sign", "m@1.0.0", path=tmp_path / "a.jsonl")
    assert rec["actor"] == "ci@example"
    monkeypatch.delenv("SRE_LLM_ACTOR")
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "Ada"], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "ada@example.org"], check=True)
    rec = audit.append("sign", "m@1.0.0", root=repo)
    assert rec["actor"] == "Ada <ada@example.org>"
    assert (repo / "audit" / "audit.jsonl").is_file()


def test_edited_record_is_named(tmp_path):
    path = _log(tmp_path)
    lines = _lines(path)
    lines[2] = lines[2].replace(b'"n":3', b'"n":4')
    path.write_bytes(b"".join(lines))
    report = audit.verify(path)
    assert not report.ok
    assert str(report.problem) == "line 3: record seq 3: hash does not match the record's content (record edited)"


def test_edited_record_with_recomputed_hash_breaks_the_chain(tmp_path):
    path = _log(tmp_path)
    lines = _lines(path)
    rec = json.loads(lines[1])
    rec["actor"] = "mallory"
    rec["hash"] = audit.record_hash(rec)
    lines[1] = audit.canonical(rec) + b"\n"
    path.write_bytes(b"".join(lines))
    assert str(audit.verify(path).problem) == (
        "line 3: record seq 3: prev_hash does not match the record before it (records deleted, inserted or reordered)"
    )


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda ls: ls[:2] + ls[3:], "line 3: record seq 4: prev_hash does not match"),  # deleted
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "line 2: record seq 3: prev_hash does not match"),  # swapped
        (lambda ls: ls[1:], "line 1: record seq 2: prev_hash does not match"),  # first removed
        (lambda ls: [*ls[:2], ls[1], *ls[2:]], "line 3: record seq 2: prev_hash does not match"),  # duplicated
    ],
    ids=["deleted", "reordered", "first-deleted", "duplicated"],
)
def test_deleted_reordered_duplicated(tmp_path, mutate, expected):
    path = _log(tmp_path)
    path.write_bytes(b"".join(mutate(_lines(path))))
    assert str(audit.verify(path).problem).startswith(expected)


def test_inserted_forged_record(tmp_path):
    path = _log(tmp_path)
    lines = _lines(path)
    second = json.loads(lines[1])
    forged = {**second, "seq": 3, "action": "promote", "prev_hash": second["hash"], "details": {}}
    forged["hash"] = audit.record_hash(forged)
    path.write_bytes(b"".join([*lines[:2], audit.canonical(forged) + b"\n", *lines[2:]]))
    # The forgery itself is self-consistent; the original record after it no longer chains.
    assert str(audit.verify(path).problem).startswith("line 4: record seq 3: prev_hash does not match")


def test_malformed_and_torn_lines(tmp_path):
    path = _log(tmp_path, 2)
    path.write_bytes(path.read_bytes() + b"not json\n")
    assert str(audit.verify(path).problem) == "line 3: record: not a JSON object"
    path = _log(tmp_path / "b", 2)
    path.write_bytes(path.read_bytes()[:-10])
    assert str(audit.verify(path).problem) == "line 2: record: partial last line (torn write or truncation)"
    with pytest.raises(CheckFailed, match="partial record"):
        audit.append("x", "y", path=path, actor="t")


def test_concurrent_appends_keep_one_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(path, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    report = audit.verify(path)
    assert report.ok, report.problem
    assert report.records == 4 * 25


def _append_many(path: Path, who: int) -> None:
    for i in range(25):
        audit.append("data-access", f"w{who}", {"n": str(i)}, path=path, actor=f"w{who}")


def test_truncated_tail_caught_against_git_head(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for k, v in (("user.name", "T"), ("user.email", "t@example.org")):
        subprocess.run(["git", "-C", str(repo), "config", k, v], check=True)
    for i in range(4):
        audit.append("register", f"m@{i}", root=repo, actor="t")
    subprocess.run(["git", "-C", str(repo), "add", "audit/audit.jsonl"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "audit"], check=True)
    audit.append("promote", "m@3", root=repo, actor="t")  # appending after the commit is fine
    report = audit.verify_in_repo(repo)
    assert report.ok and report.records == 5 and report.committed_records == 4
    log = repo / "audit" / "audit.jsonl"
    log.write_bytes(b"".join(_lines(log)[:3]))  # a valid chain, but committed records are gone
    assert audit.verify(log).ok
    report = audit.verify_in_repo(repo)
    assert str(report.problem) == (
        "line 4: record: differs from the log committed at git HEAD (committed records were changed or removed)"
    )


def test_cli_audit_verify(tmp_path):
    path = _log(tmp_path, 3)
    ok = subprocess.run([*SRE, "audit", "verify", "--log", str(path), "--json"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] is True and data["records"] == 3 and data["problem"] is None
    text = subprocess.run([*SRE, "audit", "verify", "--log", str(path)], capture_output=True, text=True, check=False)
    assert text.returncode == 0 and text.stdout.strip() == f"{path}: 3 records, chain intact (head seq 3)"
    lines = _lines(path)
    path.write_bytes(lines[0] + lines[2])
    bad = subprocess.run([*SRE, "audit", "verify", "--log", str(path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        f"{path}: line 2: record seq 3: prev_hash does not match the record before it "
        "(records deleted, inserted or reordered)"
    )
    missing = subprocess.run([*SRE, "audit", "verify", "--log", str(tmp_path / "nope.jsonl")], capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "no audit log here" in missing.stderr
