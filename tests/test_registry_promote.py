"""register → sign → verify → promote → rollback on a real git repo, and every refusal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from registry_support import (
    GOOD_METRICS,
    flip_byte,
    git,
    make_key,
    make_model,
    make_repo,
    sre,
    write_metrics,
    write_spec,
)

from sre_llm import audit
from sre_llm.errors import BadInput
from sre_llm.registry import index as ix
from sre_llm.registry import release
from sre_llm.registry.service import open_registry


def _add(repo: Path, tmp_path: Path, version: str, seed: int, metrics: dict | None = GOOD_METRICS, sign: bool = True):
    write_spec(repo, version)
    args = ["registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / f"m{seed}", seed=seed))]
    if metrics is not None:
        args += ["--metrics", str(write_metrics(tmp_path / f"eval{seed}.json", metrics))]
    out = sre(*args, cwd=repo)
    assert out.returncode == 0, out.stderr
    if sign:
        out = sre("registry", "sign", version, cwd=repo)
        assert out.returncode == 0, out.stderr


def _state(repo: Path):
    return git(repo, "rev-parse", "HEAD").strip(), (repo / "registry" / "demo-model.yaml").read_bytes()


def test_round_trip(tmp_path):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1)
    assert sre("registry", "verify", "1.0.0", cwd=repo).returncode == 0
    out = sre("registry", "promote", "1.0.0", "--json", cwd=repo)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert (res["version"], res["previous"], res["alias"], res["changed"]) == ("1.0.0", None, "champion", True)
    assert sorted(res["paths"]) == ["audit/audit.jsonl", "registry/demo-model.yaml", "registry/demo-model/1.0.0.sig",
                                    "registry/demo-model/1.0.0.train.cdx.json"]
    assert git(repo, "rev-parse", "HEAD").strip() == res["commit"]
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").split()) == sorted(res["paths"])
    entry = ix.load(repo, "demo-model").get("1.0.0")
    message = git(repo, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "registry: promote demo-model 1.0.0 to champion"
    for line in ["Version: 1.0.0", "Previous: none", f"Artifact: {entry.artifact.digest}",
                 f"Spec: specs/demo.yaml {entry.spec.sha256}", "Check: signature verified",
                 f"Signature: registry/demo-model/1.0.0.sig {entry.signature.sha256} (key, key {entry.signature.key_id})",
                 "  remediation_accuracy 0.960 >= 0.900 (min) pass", "  parameter_accuracy 0.970 >= 0.950 (min) pass",
                 "  false_positive_rate 0.020 <= 0.050 (max) pass", "  p95_latency_ms 210.5 <= 500.0 (max) pass",
                 "Actor: Release Bot <bot@example.org>"]:
        assert line in message.splitlines(), line
    assert git(repo, "status", "--porcelain", "registry", "audit") == ""

    _add(repo, tmp_path, "1.1.0", 2)
    assert sre("registry", "promote", "1.1.0", cwd=repo).stdout.startswith("demo-model champion: 1.0.0 → 1.1.0 (committed ")
    index = ix.load(repo, "demo-model")
    assert index.aliases == {"champion": "1.1.0"}
    assert [(v.version, v.status) for v in index.versions] == [("1.0.0", "retired"), ("1.1.0", "champion")]
    same = sre("registry", "promote", "1.1.0", cwd=repo)
    assert same.returncode == 0 and same.stdout.strip() == "demo-model 1.1.0 is already champion; nothing to do"

    back = sre("registry", "rollback", "--json", cwd=repo)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["version"] == "1.0.0" and json.loads(back.stdout)["previous"] == "1.1.0"
    assert git(repo, "log", "-1", "--format=%s").strip() == "registry: roll back demo-model champion from 1.1.0 to 1.0.0"
    index = ix.load(repo, "demo-model")
    assert index.aliases == {"champion": "1.0.0"}
    assert [(v.version, v.status) for v in index.versions] == [("1.0.0", "champion"), ("1.1.0", "rolled-back")]
    assert [(m.action, m.version, m.previous) for m in index.history] == [
        ("promote", "1.0.0", None), ("promote", "1.1.0", "1.0.0"), ("rollback", "1.0.0", "1.1.0")]
    nothing = sre("registry", "rollback", cwd=repo)
    assert nothing.returncode == 2
    assert nothing.stderr.strip() == "demo-model: no earlier champion to roll back to; name one with --to VERSION"
    forward = sre("registry", "rollback", "--to", "1.1.0", cwd=repo)
    assert forward.returncode == 0 and ix.load(repo, "demo-model").aliases == {"champion": "1.1.0"}

    report = sre("audit", "verify", "--json", cwd=repo)
    assert report.returncode == 0, report.stdout
    data = json.loads(report.stdout)
    assert data["actions"] == {"register": 2, "sign": 2, "checkpoint": 2, "promote": 2, "rollback": 2}
    assert data["committed_records"] == data["records"] == 10
    assert (data["checkpoints"], data["sealed_seq"]) == (2, 6)  # the sign of 1.1.0 is seq 6
    assert git(repo, "log", "--format=%s").splitlines()[:4] == [
        "registry: roll back demo-model champion from 1.0.0 to 1.1.0",
        "registry: roll back demo-model champion from 1.1.0 to 1.0.0",
        "registry: promote demo-model 1.1.0 to champion", "registry: promote demo-model 1.0.0 to champion"]


@pytest.mark.parametrize("tamper, reason", [
    ("flip", "Signature mismatch: Hash mismatch for 'adapter_model.safetensors:0:300000'"),
    ("add", "Signature mismatch: Extra files found in model"),
    ("delete", "Signature mismatch: Missing files in model"),
    ("wrong-key", "Key mismatch: The public key hash in the signature's verification material does not match"),
])
def test_promote_refuses_tampered_or_wrong_key(tmp_path, tamper, reason):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1)
    tree = repo / ".cache" / "artifacts" / "sha256" / ix.load(repo, "demo-model").get("1.0.0").artifact.digest[7:]
    extra = []
    if tamper == "flip":
        flip_byte(tree / "adapter_model.safetensors")
    elif tamper == "add":
        (tree / "notes.md").write_text("hi")
    elif tamper == "delete":
        (tree / "tokenizer_config.json").unlink()
    else:
        make_key(tmp_path / "other.pem", tmp_path / "other.pub.pem")
        extra = ["--public-key", str(tmp_path / "other.pub.pem")]
    before = _state(repo)
    out = sre("registry", "promote", "1.0.0", *extra, cwd=repo)
    assert out.returncode == 1
    assert out.stderr.startswith(f"refusing demo-model 1.0.0: signature: {reason}"), out.stderr
    assert _state(repo) == before
    assert ix.load(repo, "demo-model").aliases == {}


def test_promote_refuses_failed_gates_missing_metrics_and_unsigned(tmp_path):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1, metrics={**GOOD_METRICS, "metrics": {"false_positive_rate": 0.08}})
    _add(repo, tmp_path, "1.0.1", 2, metrics=None)
    _add(repo, tmp_path, "1.0.2", 3, sign=False)
    before = _state(repo)
    gates = sre("registry", "promote", "1.0.0", cwd=repo)
    assert gates.returncode == 1
    assert gates.stderr.strip() == "refusing demo-model 1.0.0: gates not passed: false_positive_rate 0.080 > 0.050 (max) FAIL"
    nometrics = sre("registry", "promote", "1.0.1", "--json", cwd=repo)
    assert nometrics.returncode == 1 and json.loads(nometrics.stdout)["error"]["message"] == (
        "refusing demo-model 1.0.1: no gate figures stored (register it with --metrics eval.json)")
    unsigned = sre("registry", "promote", "1.0.2", cwd=repo)
    assert unsigned.returncode == 1
    assert unsigned.stderr.strip() == "refusing demo-model 1.0.2: unsigned (run `sre-llm registry sign 1.0.2`)"
    assert _state(repo) == before


def test_rollback_checks_its_target_offline(tmp_path):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1)
    _add(repo, tmp_path, "1.1.0", 2)
    assert sre("registry", "promote", "1.0.0", cwd=repo).returncode == 0
    assert sre("registry", "promote", "1.1.0", cwd=repo).returncode == 0
    tree = repo / ".cache" / "artifacts" / "sha256" / ix.load(repo, "demo-model").get("1.0.0").artifact.digest[7:]
    flip_byte(tree / "adapter_model.safetensors")
    before = _state(repo)
    refused = sre("registry", "rollback", cwd=repo)
    assert refused.returncode == 1 and refused.stderr.startswith("refusing demo-model 1.0.0: signature: Signature mismatch")
    assert _state(repo) == before
    # An emergency rollback can skip the re-hash; it is still a commit and an audit record.
    forced = sre("registry", "rollback", "--no-verify", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert "Check: signature not checked (--no-verify)" in git(repo, "log", "-1", "--format=%B").splitlines()
    assert sre("registry", "rollback", "--to", "9.9.9", cwd=repo).returncode == 2


def test_challenger_alias_and_staged_work_left_alone(tmp_path):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1)
    (repo / "notes.txt").write_text("unrelated work in progress\n")
    git(repo, "add", "notes.txt")
    assert sre("registry", "promote", "1.0.0", "--alias", "challenger", cwd=repo).returncode == 0
    assert ix.load(repo, "demo-model").aliases == {"challenger": "1.0.0"}
    assert "notes.txt" not in git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert git(repo, "diff", "--cached", "--name-only").split() == ["notes.txt"]  # still staged, not committed
    assert sre("registry", "promote", "1.0.0", cwd=repo).returncode == 0
    assert ix.load(repo, "demo-model").aliases == {"champion": "1.0.0"}  # the challenger became champion
    refused = sre("registry", "promote", "1.0.0", "--alias", "challenger", cwd=repo)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "demo-model 1.0.0 is the champion; a challenger must be another version"
    _add(repo, tmp_path, "1.1.0", 2)
    _add(repo, tmp_path, "1.2.0", 3)
    assert sre("registry", "promote", "1.1.0", "--alias", "challenger", cwd=repo).returncode == 0
    assert sre("registry", "promote", "1.2.0", "--alias", "challenger", cwd=repo).returncode == 0
    index = ix.load(repo, "demo-model")
    assert index.aliases == {"champion": "1.0.0", "challenger": "1.2.0"}
    assert [(v.version, v.status) for v in index.versions] == [
        ("1.0.0", "champion"), ("1.1.0", "signed"), ("1.2.0", "challenger")]


def test_failed_commit_puts_the_index_back(tmp_path):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1)
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'policy: promotions need a ticket' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = _state(repo)
    out = sre("registry", "promote", "1.0.0", cwd=repo)
    assert out.returncode == 2 and out.stderr.strip() == "git commit failed: policy: promotions need a ticket"
    assert _state(repo) == before
    actions = [json.loads(line)["action"] for line in (repo / "audit" / "audit.jsonl").read_text().splitlines()]
    assert actions == ["register", "sign", "checkpoint", "promote", "promote-aborted"]
    assert audit.verify(repo / "audit" / "audit.jsonl").ok


def test_no_git_identity_changes_nothing(tmp_path):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1)
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    before = _state(repo)
    env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
    out = sre("registry", "promote", "1.0.0", cwd=repo, env=env)
    assert out.returncode == 2
    assert out.stderr.strip() == ".: git has no committer identity: set `git config user.name` and `git config user.email`"
    assert _state(repo) == before


def test_hook_is_called_and_its_files_are_committed(tmp_path, monkeypatch):
    repo = make_repo(tmp_path)
    _add(repo, tmp_path, "1.0.0", 1)
    calls = []

    def render_manifests(reg, model, alias, previous, current):
        calls.append((model, alias, previous, current))
        target = reg.root / "deploy" / f"{model}-{alias}.txt"
        target.parent.mkdir(exist_ok=True)
        target.write_text(f"{current}\n")
        return [target]

    monkeypatch.setattr(release, "on_alias_change", render_manifests)
    reg = open_registry(repo)
    res = release.promote(reg, "demo-model", "1.0.0")
    assert calls == [("demo-model", "champion", None, "1.0.0")]
    assert "deploy/demo-model-champion.txt" in git(repo, "show", "--name-only", "--format=", res.commit).split()
    with pytest.raises(BadInput, match="alias 'canary'"):
        release.promote(reg, "demo-model", "1.0.0", alias="canary")
