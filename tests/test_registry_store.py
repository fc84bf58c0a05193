"""Artifact store, semantic versions and gate figures: the registry's pure parts on real files."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest
from registry_support import make_model

from sre_llm.errors import BadInput
from sre_llm.registry import lineage
from sre_llm.registry.store import ArtifactStore, LocalStore, manifest_text
from sre_llm.registry.versioning import (
    SemVer,
    next_version,
    sort_versions,
    suggest_bump,
)
from sre_llm.spec.model import GatesSpec


def test_tree_digest_is_sha256sum_manifest(tmp_path):
    model = make_model(tmp_path / "m")
    (model / "sub").mkdir()
    (model / "sub" / "extra.bin").write_bytes(b"\x00" * 10)
    store = LocalStore(tmp_path / "store")
    assert isinstance(store, ArtifactStore)
    tree = store.put_tree(model)
    listing = subprocess.run("find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum",
                             shell=True, cwd=model, capture_output=True, text=True, check=True).stdout
    assert manifest_text(tree.files) == listing
    assert tree.digest == "sha256:" + hashlib.sha256(listing.encode()).hexdigest()
    assert [f.path for f in tree.files] == ["adapter_config.json", "adapter_model.safetensors",
                                             "special_tokens_map.json", "sub/extra.bin", "tokenizer.json",
                                             "tokenizer_config.json"]
    stored = store.local_tree(tree.digest)
    assert stored == tmp_path / "store" / "sha256" / tree.digest.split(":")[1]
    assert (stored / "sub" / "extra.bin").read_bytes() == b"\x00" * 10
    assert oct((stored / "tokenizer.json").stat().st_mode & 0o777) == "0o444"
    assert list((tmp_path / "store" / "tmp").iterdir()) == []  # staging cleaned
    # Idempotent: the same content lands on the same digest, nothing is rewritten.
    assert store.put_tree(model) == tree
    assert store.check_tree(tree.digest, tree.files) == []


def test_git_metadata_is_not_stored_and_symlinked_files_are_copied(tmp_path):
    model = make_model(tmp_path / "m")
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "outside.txt").write_text("hello")
    os.symlink(tmp_path / "outside.txt", model / "linked.txt")
    tree = LocalStore(tmp_path / "s").put_tree(model)
    paths = [f.path for f in tree.files]
    assert ".git/HEAD" not in paths and "linked.txt" in paths
    stored = LocalStore(tmp_path / "s").local_tree(tree.digest) / "linked.txt"
    assert not stored.is_symlink() and stored.read_text() == "hello"


def test_failure_mid_copy_leaves_nothing(tmp_path):
    model = make_model(tmp_path / "m")
    os.mkfifo(model / "zz-pipe")  # sorted last: the other files are copied before it is reached
    store = LocalStore(tmp_path / "store")
    with pytest.raises(BadInput, match="zz-pipe: not a regular file"):
        store.put_tree(model)
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    assert not (tmp_path / "store" / "sha256").exists() or list((tmp_path / "store" / "sha256").iterdir()) == []


def test_check_tree_names_each_difference(tmp_path):
    store = LocalStore(tmp_path / "store")
    tree = store.put_tree(make_model(tmp_path / "m"))
    root = store.local_tree(tree.digest)
    os.chmod(root / "adapter_config.json", 0o644)
    (root / "adapter_config.json").write_text("{}")
    (root / "tokenizer.json").unlink()
    (root / "new.txt").write_text("x")
    assert store.check_tree(tree.digest, tree.files) == [
        "missing file tokenizer.json", "unexpected file new.txt", "content of adapter_config.json changed"]


def test_blobs(tmp_path):
    (tmp_path / "eval.json").write_text('{"a": 1}')
    store = LocalStore(tmp_path / "store")
    digest = store.put_blob(tmp_path / "eval.json")
    assert digest == "sha256:" + hashlib.sha256(b'{"a": 1}').hexdigest()
    assert store.local_blob(digest).read_text() == '{"a": 1}'
    assert store.has(digest) and not store.has("sha256:" + "0" * 64)
    with pytest.raises(BadInput, match="is not a sha256 digest"):
        store.has("md5:abc")


def test_semver_order_and_bumps():
    assert sort_versions(["1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.9", "1.2.0-alpha", "2.0.0"]) == [
        "0.9.9", "1.2.0-alpha", "1.2.0-rc.1", "1.2.0", "1.10.0", "2.0.0"]
    assert str(SemVer("1.2.3").bump("patch")) == "1.2.4"
    assert str(SemVer("1.2.3").bump("minor")) == "1.3.0"
    assert str(SemVer("1.2.3").bump("major")) == "2.0.0"
    assert str(SemVer("1.3.0-rc.1").bump("patch")) == "1.3.0"
    assert next_version(["1.0.0", "1.0.1", "0.5.0"], "1.0.0", "patch") == "1.0.2"
    assert next_version([], "0.1.0", "minor") == "0.2.0"
    with pytest.raises(BadInput, match="not a semantic version"):
        SemVer("1.0")


def test_suggested_bump_follows_the_documented_rules():
    prev = {"base_model": {"name": "Qwen/Qwen2-7B", "revision": "abc"}, "dataset": {"digest": "sha256:1"}}
    assert suggest_bump(prev, prev) == "patch"
    assert suggest_bump(prev, {**prev, "dataset": {"digest": "sha256:2"}}) == "minor"
    assert suggest_bump(prev, {**prev, "base_model": {"name": "Qwen/Qwen2-7B", "revision": "def"}}) == "major"
    assert suggest_bump(None, prev) == "major"


def test_gate_directions_cover_the_spec_gates():
    assert set(lineage.GATE_OPS) == set(GatesSpec.model_fields)


def test_figures_from_several_report_shapes():
    assert lineage.figures({"remediation_accuracy": 0.9, "p95_latency_ms": 100}) == {
        "remediation_accuracy": 0.9, "p95_latency_ms": 100.0}
    assert lineage.figures({"gates": [{"name": "parameter_accuracy", "actual": 0.5}],
                            "metrics": {"parameter_accuracy": 0.99, "false_positive_rate": 0}}) == {
        "parameter_accuracy": 0.5, "false_positive_rate": 0.0}
    assert lineage.figures({"latency_ms": {"p95": 12}, "summary": {"remediation_accuracy": True}}) == {
        "p95_latency_ms": 12.0}


def test_gates_pass_fail_and_missing():
    gates = lineage.evaluate_gates(
        {"remediation_accuracy": 0.9, "false_positive_rate": 0.05, "parameter_accuracy": 0.95},
        {"remediation_accuracy": 0.9, "false_positive_rate": 0.06},
    )
    assert [(n, g.passed) for n, g in gates.items()] == [
        ("remediation_accuracy", True), ("false_positive_rate", False), ("parameter_accuracy", False)]
    assert lineage.gate_line("false_positive_rate", gates["false_positive_rate"]) == "false_positive_rate 0.060 > 0.050 (max) FAIL"
    assert lineage.gate_line("parameter_accuracy", gates["parameter_accuracy"]) == "parameter_accuracy not measured (min 0.950) FAIL"


def test_run_record_lineage():
    record = {"run_id": "20261128-1", "git_commit": "abc123", "dataset": {"digest": "sha256:d", "size": 1600},
              "packages": {"torch": "2.14.1", "llamafactory": "0.9.5"}, "start": "t0", "end": "t1"}
    run = lineage.run_ref(record, "sha256:r")
    assert run.model_dump() == {"id": "20261128-1", "record_sha256": "sha256:r", "git_commit": "abc123",
                                "started": "t0", "finished": "t1"}
    assert lineage.dataset_ref("demo", record).model_dump() == {"name": "demo", "digest": "sha256:d", "size": 1600,
                                                                 "answer_format": "literal-v1"}  # a record without one
    assert lineage.packages(record) == {"llamafactory": "0.9.5", "torch": "2.14.1"}
    assert lineage.packages(None)["sre-llm"] == "0.1.0"
