"""``sre-llm registry register`` and the read commands, on a real git repo with real model directories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from registry_support import (
    GOOD_METRICS,
    SRE,
    make_model,
    make_repo,
    sre,
    write_metrics,
    write_spec,
)

from sre_llm.errors import BadInput, CheckFailed
from sre_llm.registry import index as ix
from sre_llm.registry.service import diff, list_versions, open_registry, register, show


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path)


def test_register_records_lineage_gates_and_files(repo, tmp_path):
    model = make_model(tmp_path / "m")
    metrics = write_metrics(tmp_path / "eval.json")
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"run_id": "run-7", "dataset": {"digest": "sha256:" + "d" * 64, "size": 1800},
                               "packages": {"torch": "2.14.1"}, "git_commit": "c0ffee", "answer_format": "labelref-v1"}))
    reg = open_registry(repo)
    res = register(reg, repo / "specs" / "demo.yaml", model, metrics, run)
    assert (res.model, res.version, res.created) == ("demo-model", "1.0.0", True)
    index = ix.load(repo, "demo-model")
    entry = index.get("1.0.0")
    assert entry.status == "registered" and entry.signature is None and index.aliases == {}
    assert entry.spec.path == "specs/demo.yaml" and entry.spec.version == "1.0.0"
    assert entry.base_model.model_dump() == {"name": None, "path": ".cache/models/tiny", "revision": None, "family": "qwen2"}
    # How the model answers travels with it: the gateway expands label references by it.
    assert entry.dataset.model_dump() == {"name": "demo-data", "digest": "sha256:" + "d" * 64, "size": 1800,
                                          "answer_format": "labelref-v1"}
    assert entry.run.id == "run-7" and entry.run.git_commit == "c0ffee"
    assert entry.packages == {"torch": "2.14.1"}
    assert entry.metrics.figures == {"remediation_accuracy": 0.96, "parameter_accuracy": 0.97,
                                     "false_positive_rate": 0.02, "p95_latency_ms": 210.5}
    assert {n: (g.value, g.op, g.threshold, g.passed) for n, g in entry.gates.items()} == {
        "remediation_accuracy": (0.96, ">=", 0.9, True), "parameter_accuracy": (0.97, ">=", 0.95, True),
        "false_positive_rate": (0.02, "<=", 0.05, True), "p95_latency_ms": (210.5, "<=", 500.0, True)}
    assert entry.gates_passed is True
    assert [f.path for f in entry.artifact.files] == ["adapter_config.json", "adapter_model.safetensors",
                                                      "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert entry.artifact.size == sum(p.stat().st_size for p in model.iterdir())
    stored = reg.store.local_tree(entry.artifact.digest)
    assert (stored / "adapter_model.safetensors").read_bytes() == (model / "adapter_model.safetensors").read_bytes()
    assert json.loads(reg.store.local_blob(entry.metrics.digest).read_text()) == GOOD_METRICS
    # The index is plain YAML with a header, and it parses back to the same thing.
    text = (repo / "registry" / "demo-model.yaml").read_text()
    assert text.startswith("# Model registry index, written by sre-llm")
    assert ix.dump(ix.parse(text, "x")) == text
    (record,) = [json.loads(line) for line in (repo / "audit" / "audit.jsonl").read_text().splitlines()]
    assert record["action"] == "register" and record["subject"] == "demo-model@1.0.0"
    assert record["digests"]["artifact"] == entry.artifact.digest and record["actor"] == "Release Bot <bot@example.org>"


def test_same_version_same_digests_is_a_no_op_and_different_is_refused(repo, tmp_path):
    reg = open_registry(repo)
    spec = repo / "specs" / "demo.yaml"
    register(reg, spec, make_model(tmp_path / "m1"))
    before = (repo / "registry" / "demo-model.yaml").read_bytes()
    again = register(reg, spec, make_model(tmp_path / "m1-copy"))  # same bytes, other folder
    assert again.created is False and (repo / "registry" / "demo-model.yaml").read_bytes() == before
    with pytest.raises(CheckFailed) as err:
        register(reg, spec, make_model(tmp_path / "m2", seed=2))
    msg = str(err.value)
    assert msg.startswith("demo-model 1.0.0 is already registered with different digests (artifact sha256:")
    assert msg.endswith("pass --bump (major 2.0.0, minor 1.1.0, patch 1.0.1; this change calls for patch)")
    assert (repo / "registry" / "demo-model.yaml").read_bytes() == before
    res = register(reg, spec, make_model(tmp_path / "m2", seed=2), bump="patch")
    assert res.version == "1.0.1" and res.entry.spec.version == "1.0.0"
    assert register(reg, spec, make_model(tmp_path / "m3", seed=3), bump="minor").version == "1.1.0"
    assert [r["version"] for r in list_versions(reg, "demo-model")] == ["1.1.0", "1.0.1", "1.0.0"]


def test_cli_register_refusal_exit_codes_and_json(repo, tmp_path):
    m1, m2 = make_model(tmp_path / "m1"), make_model(tmp_path / "m2", seed=2)
    ok = sre("registry", "register", "specs/demo.yaml", "--model", str(m1), "--json", cwd=repo)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] and data["version"] == "1.0.0" and data["created"] and data["gates_passed"] is False
    refused = sre("registry", "register", "specs/demo.yaml", "--model", str(m2), "--json", cwd=repo)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["message"].startswith("demo-model 1.0.0 is already registered with different digests")
    bumped = sre("registry", "register", "specs/demo.yaml", "--model", str(m2), "--bump", "major", cwd=repo)
    assert bumped.returncode == 0 and bumped.stdout.splitlines()[0] == "demo-model 2.0.0: registered"
    missing = sre("registry", "register", "specs/demo.yaml", "--model", str(tmp_path / "nope"), cwd=repo)
    assert missing.returncode == 2 and missing.stderr.strip() == f"{tmp_path / 'nope'}: model directory not found"
    bad_metrics = tmp_path / "bad.json"
    bad_metrics.write_text("[1, 2]")
    bad = sre("registry", "register", "specs/demo.yaml", "--model", str(m1), "--metrics", str(bad_metrics), cwd=repo)
    assert bad.returncode == 2 and bad.stderr.strip() == f"{bad_metrics}: metrics file must hold a JSON object"
    bad_bump = sre("registry", "register", "specs/demo.yaml", "--model", str(m1), "--bump", "huge", cwd=repo)
    assert bad_bump.returncode == 2 and "'huge' is not one of 'patch', 'minor', 'major'" in bad_bump.stderr


def test_interrupted_register_raising_midway_leaves_index(repo, tmp_path):
    reg = open_registry(repo)
    register(reg, repo / "specs" / "demo.yaml", make_model(tmp_path / "m1"))
    before = (repo / "registry" / "demo-model.yaml").read_bytes()
    audit_before = (repo / "audit" / "audit.jsonl").read_bytes()
    write_spec(repo, "1.1.0")
    broken = make_model(tmp_path / "m2", seed=2)
    os.mkfifo(broken / "zz.fifo")  # reached after the real files were copied
    with pytest.raises(BadInput, match="not a regular file"):
        register(reg, repo / "specs" / "demo.yaml", broken)
    assert (repo / "registry" / "demo-model.yaml").read_bytes() == before
    assert (repo / "audit" / "audit.jsonl").read_bytes() == audit_before
    assert list((repo / ".cache" / "artifacts" / "tmp").iterdir()) == []


def test_interrupted_register_killed_midway_leaves_index(repo, tmp_path):
    reg = open_registry(repo)
    register(reg, repo / "specs" / "demo.yaml", make_model(tmp_path / "m1"))
    before = (repo / "registry" / "demo-model.yaml").read_bytes()
    write_spec(repo, "1.1.0")
    big = make_model(tmp_path / "big", seed=5)
    with open(big / "model-00001-of-00001.safetensors", "wb") as fh:  # sparse: fast to make, slow to copy
        fh.truncate(1 << 30)
    staging = repo / ".cache" / "artifacts" / "tmp"
    proc = subprocess.Popen([*SRE, "registry", "register", "specs/demo.yaml", "--model", str(big)], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = list(staging.glob("put-*/model-00001-of-00001.safetensors")) if staging.is_dir() else []
        if partial and partial[0].stat().st_size > 0:
            break
        assert proc.poll() is None, "register finished before it could be killed"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list(staging.glob("put-*")), "the kill should have left staging behind"
    assert (repo / "registry" / "demo-model.yaml").read_bytes() == before
    assert [v.version for v in ix.load(repo, "demo-model").versions] == ["1.0.0"]
    # The next registration sweeps the dead process's staging and works.
    os.unlink(big / "model-00001-of-00001.safetensors")
    assert register(reg, repo / "specs" / "demo.yaml", big).version == "1.1.0"
    assert list(staging.iterdir()) == []


def test_list_show_diff(repo, tmp_path):
    reg = open_registry(repo)
    spec = repo / "specs" / "demo.yaml"
    register(reg, spec, make_model(tmp_path / "m1"), write_metrics(tmp_path / "e1.json"))
    m2 = make_model(tmp_path / "m2")
    (m2 / "adapter_config.json").write_text('{"r": 16}')
    (m2 / "README.md").write_text("card")
    worse = {**GOOD_METRICS, "metrics": {"false_positive_rate": 0.08}}
    write_spec(repo, "1.0.1")
    register(reg, spec, m2, write_metrics(tmp_path / "e2.json", worse))
    shown = show(reg, "demo-model", "1.0.1")
    assert shown["version"] == "1.0.1" and shown["gates_passed"] is False and shown["aliases"] == []
    rows = {r["field"]: (r["a"], r["b"]) for r in diff(reg, "demo-model", "1.0.0", "1.0.1")}
    assert rows["artifact.files.README.md"][0] is None
    assert rows["artifact.files.adapter_config.json"][0] != rows["artifact.files.adapter_config.json"][1]
    assert "artifact.files.tokenizer.json" not in rows
    assert rows["gates.false_positive_rate.value"] == (0.02, 0.08)
    assert rows["gates.false_positive_rate.passed"] == (True, False)
    assert rows["gates_passed"] == (True, False)
    assert rows["spec.version"] == ("1.0.0", "1.0.1")
    out = sre("registry", "list", "--json", cwd=repo)
    assert out.returncode == 0
    assert [(v["version"], v["status"], v["gates_passed"], v["signed"]) for v in json.loads(out.stdout)["versions"]] == [
        ("1.0.1", "registered", False, False), ("1.0.0", "registered", True, False)]
    text = sre("registry", "diff", "1.0.0", "1.0.1", cwd=repo)
    assert "gates.false_positive_rate.value: 0.02 → 0.08" in text.stdout.splitlines()
    unknown = sre("registry", "show", "9.9.9", cwd=repo)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "demo-model: no version or alias '9.9.9' (versions: 1.0.0, 1.0.1)"
    nomodel = sre("registry", "list", "--name", "other", cwd=repo)
    assert nomodel.returncode == 2 and nomodel.stderr.strip() == "model 'other' is not registered (registered: demo-model)"


def test_a_hand_edited_index_with_unknown_keys_is_refused(repo, tmp_path):
    reg = open_registry(repo)
    register(reg, repo / "specs" / "demo.yaml", make_model(tmp_path / "m1"))
    path = repo / "registry" / "demo-model.yaml"
    path.write_text(path.read_text().replace("aliases: {}", "aliases: {}\nowner: me"))
    out = sre("registry", "list", cwd=repo)
    assert out.returncode == 2 and out.stderr.strip() == "registry/demo-model.yaml: owner: Extra inputs are not permitted (1 problem(s))"


def test_llamafactory_output_is_registered_without_its_checkpoints(repo, tmp_path):
    # `sre-llm train` leaves the model at the top of output/ and resume state in checkpoint-N/.
    model = make_model(tmp_path / "output")
    (model / "trainer_state.json").write_text("{}")
    for step in (100, 200):
        (model / f"checkpoint-{step}").mkdir()
        (model / f"checkpoint-{step}" / "optimizer.pt").write_bytes(b"state" * 100)
    (model / "nested").mkdir()
    (model / "nested" / "checkpoint-1").mkdir()  # only top-level checkpoint folders are training state
    (model / "nested" / "checkpoint-1" / "keep.txt").write_text("kept")
    reg = open_registry(repo)
    register(reg, repo / "specs" / "demo.yaml", model, write_metrics(tmp_path / "eval.json"), None)
    paths = [f.path for f in ix.load(repo, "demo-model").get("1.0.0").artifact.files]
    assert "trainer_state.json" in paths and "nested/checkpoint-1/keep.txt" in paths
    assert not [p for p in paths if p.startswith("checkpoint-")]

    # A folder that is not a LLaMA Factory output keeps everything.
    other = make_model(tmp_path / "plain")
    (other / "checkpoint-3").mkdir()
    (other / "checkpoint-3" / "w.bin").write_bytes(b"w")
    assert "checkpoint-3/w.bin" in [f.path for f in reg.store.put_tree(other).files]
