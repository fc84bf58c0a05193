"""The command line as a user runs it: exit codes, messages, --json, nothing written on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRE = [sys.executable, "-m", "sre_llm"]


def run(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SRE, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_validate_shipped_specs_ok() -> None:
    proc = run("validate", "specs/llama3-8b-lora.yaml", "specs/qwen2-7b-qlora.yaml", "specs/tiny-cpu.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "specs/llama3-8b-lora.yaml: ok (sre-remediation-llama3-8b 1.0.0)",
        "specs/qwen2-7b-qlora.yaml: ok (sre-remediation-qwen2-7b 1.0.0)",
        "specs/tiny-cpu.yaml: ok (sre-remediation-tiny 0.1.0)",
    ]


SEED_RAW = """apiVersion: sre-llm/v1
kind: ModelRelease
metadata:
  name: seed
  version: 1.0.0
spec:
  base_model:
    name: Qwen/Qwen2-7B
    family: qwen2
  training:
    method: lora
    badam: {}
    quantization: {bits: 4}
    optimizer: adamw_bits_8bit
"""


def test_seed_raw_recipe_exits_2_with_every_error(tmp_path: Path) -> None:
    (tmp_path / "seed.yaml").write_text(SEED_RAW)
    proc = run("validate", "seed.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "seed.yaml:12:12: spec.training.badam: BAdam is for method full; LLaMA Factory refuses LoRA with BAdam (got method lora)",
        "seed.yaml:13:19: spec.training.quantization: quantizes the base for method qlora only (got method lora)",
        "seed.yaml:14:16: spec.training.optimizer: unknown value 'adamw_bits_8bit' (did you mean adamw_bnb_8bit?); `sre-llm schema` lists the choices",
    ]
    assert list(tmp_path.iterdir()) == [tmp_path / "seed.yaml"]


def test_validate_json_report(tmp_path: Path) -> None:
    (tmp_path / "seed.yaml").write_text(SEED_RAW)
    proc = run("validate", "--json", "seed.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["error"]["code"] == "spec_invalid"
    assert report["error"]["path"] == "seed.yaml"
    assert [(e["line"], e["col"], e["path"]) for e in report["diagnostics"]] == [
        (12, 12, "spec.training.badam"), (13, 19, "spec.training.quantization"), (14, 16, "spec.training.optimizer"),
    ]


def test_errors_from_several_files_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: [\n")
    (tmp_path / "b.yaml").write_text(SEED_RAW.replace("version: 1.0.0", "version: one"))
    proc = run("validate", "a.yaml", "b.yaml", "missing.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("a.yaml:2:1: YAML syntax error:")
    assert "b.yaml:5:12: metadata.version: must be a semantic version MAJOR.MINOR.PATCH such as 1.0.0 (got 'one')" in lines
    assert "missing.yaml: no such file" in lines


def test_secret_value_is_never_echoed(tmp_path: Path) -> None:
    text = SEED_RAW.replace("  training:", "  dataset:\n    sources:\n      - type: linear\n        token: lin_api_TOPSECRET\n  training:")
    (tmp_path / "s.yaml").write_text(text)
    proc = run("validate", "--json", "s.yaml", cwd=tmp_path)
    assert "TOPSECRET" not in proc.stdout + proc.stderr
    assert "spec.dataset.sources[0].token" in proc.stdout


def test_render_then_check_then_drift(tmp_path: Path) -> None:
    shutil.copy(ROOT / "specs" / "tiny-cpu.yaml", tmp_path / "tiny.yaml")
    proc = run("render", "tiny.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "created  rendered/sre-remediation-tiny/0.1.0/train.yaml" in proc.stdout
    assert run("render", "--check", "tiny.yaml", cwd=tmp_path).returncode == 0
    spec = tmp_path / "tiny.yaml"
    spec.write_text(spec.read_text().replace("epochs: 2\n", "epochs: 6\n"))
    proc = run("render", "--check", "--json", "tiny.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["drift"] is True
    assert {f["path"].rsplit("/", 1)[1] for f in report["files"] if f["status"] == "changed"} == {"train.yaml", "release.lock.json"}
    assert "rendered file(s) out of date" in proc.stderr


def test_usage_errors_exit_2() -> None:
    assert run("validate").returncode == 2
    assert run("render", "--no-such-flag").returncode == 2
    assert run("no-such-command").returncode == 2


def test_help_teaches() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    assert "sre-llm render --check specs/*.yaml" in proc.stdout
    assert "Exit codes" in run("render", "--help").stdout or "exit" in run("render", "--help").stdout.lower()


def test_schema_file_is_current() -> None:
    proc = run("schema", "--out", "schema/model-release.schema.json", "--check")
    assert proc.returncode == 0, proc.stderr


def test_preflight_names_what_this_machine_lacks() -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": "/nonexistent"}
    proc = run("preflight", "specs/qwen2-7b-qlora.yaml", env=env)
    assert proc.returncode == 2  # the code `train --dry-run` gives for the same problems
    assert "specs/qwen2-7b-qlora.yaml: spec.training.device: cuda: no CUDA GPU on this machine" in proc.stderr
    assert "spec.base_model.name: Qwen/Qwen2-7B is not on disk and the hub is off (HF_HUB_OFFLINE)" in proc.stderr
    as_json = json.loads(run("preflight", "--json", "specs/qwen2-7b-qlora.yaml", env=env).stdout)
    assert as_json["error"]["code"] == "cannot_run_here"
    assert {p["setting"] for p in as_json["problems"]} >= {"spec.training.device", "spec.base_model.name"}


def test_readme_validate_example_is_what_validate_prints() -> None:
    """The README's step 2 shows a real run on a file that exists (docs/examples/seed-raw.yaml)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("   $ sre-llm validate docs/examples/seed-raw.yaml\n", 1)[1].split("   ```", 1)[0]
    proc = run("validate", "docs/examples/seed-raw.yaml")
    assert proc.returncode == 2
    assert [line.strip() for line in block.splitlines()] == proc.stderr.splitlines()
