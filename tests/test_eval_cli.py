"""``sre-llm eval`` without a model: gate exit codes through --rescore, bad input, the report files."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_eval_scoring import CASES

from sre_llm.answer.format import INSTRUCTION, render_input
from sre_llm.answer.guard import guard
from sre_llm.evaluate.harness import FORMAT, rescore

EVAL_YAML = """\
model: {{base: /nowhere/base, revision: null, template: qwen, finetuning_type: lora, quantization_bit: null}}
data: {{dataset_dir: data, test_dataset: t_test, min_test_examples: 1}}
generation: {{batch_size: 4, max_new_tokens: 64, do_sample: false, temperature: 0.0, cutoff_len: 256}}
gates: {{remediation_accuracy_min: {acc}, parameter_accuracy_min: {par}, false_positive_rate_max: {fp}, p95_latency_ms_max: 500.0}}
suite: {{adversarial: false, baseline: none}}
"""


def stored_result() -> dict:
    """An eval.json as the harness writes it, over the scoring test's thirteen hand-written answers."""
    preds = []
    for i, (expected, output) in enumerate(CASES):
        preds.append({"index": i, "input": render_input({"alertname": f"A{i}", "namespace": "shop"}), "instruction": INSTRUCTION,
                      "expected": expected, "output": output, "batch_ms": 400.0, "batch_size": 4, "truncated": False,
                      "latency_ms": [90.0, 110.0, 130.0, 150.0, 170.0][i] if i < 5 else None,
                      "guard": guard(output, {"alertname": f"A{i}", "namespace": "shop"}).to_dict()})
    return {
        "format": FORMAT, "config": "eval.yaml",
        "model": {"kind": "adapter", "base": "/nowhere/base", "adapter": "run/output", "template": "qwen", "path": "run"},
        "dataset": {"path": "data/test.jsonl", "sha256": "0" * 64, "examples": len(preds)},
        "generation": {"batch_size": 4, "max_new_tokens": 64, "mode": "batched, left padding, greedy"},
        "scores": {"wall_seconds": 1.3}, "gate_config": {}, "predictions": preds, "adversarial": None,
        "loss_curves": {"train": [[5, 2.0], [10, 1.2], [15, 0.8]], "eval": [[10, 1.1]]}, "baseline": None,
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "eval.json").write_text(json.dumps(stored_result()))
    (tmp_path / "eval.yaml").write_text(EVAL_YAML.format(acc=0.9, par=0.95, fp=0.05))
    (tmp_path / "lenient").mkdir()
    (tmp_path / "lenient/eval.yaml").write_text(EVAL_YAML.format(acc=0.5, par=0.3, fp=0.5))
    return tmp_path


def sre_llm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sre_llm", *args], cwd=cwd, check=False, capture_output=True, text=True, timeout=120)


def test_failing_gates_exit_1_with_one_line(workdir: Path):
    p = sre_llm("eval", "eval.yaml", "--rescore", "eval.json", "--out", "out", cwd=workdir)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        "gate failed: remediation_accuracy 0.615 < 0.900 (min) FAIL; parameter_accuracy 0.385 < 0.950 (min) FAIL; "
        "false_positive_rate 0.500 > 0.050 (max) FAIL")
    assert "p95_latency_ms 166.0 <= 500.0 (max) pass" in p.stdout
    result = json.loads((workdir / "out/eval.json").read_text())
    assert result["passed"] is False and result["scores"]["latency"]["samples"] == 5


def test_passing_gates_exit_0_and_json(workdir: Path):
    p = sre_llm("eval", "lenient/eval.yaml", "--rescore", "eval.json", "--out", "out", "--json", cwd=workdir)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["passed"] is True and summary["failure"] is None
    assert [g["name"] for g in summary["gates"]] == ["remediation_accuracy", "parameter_accuracy", "false_positive_rate", "p95_latency_ms"]
    assert sorted(Path(f).name for f in summary["files"]) == [
        "confusion.png", "eval.json", "latency.png", "loss.png", "report.html", "report.md"]


def test_bad_input_exits_2(workdir: Path):
    p = sre_llm("eval", "eval.yaml", cwd=workdir)
    assert (p.returncode, p.stderr.strip()) == (2, "eval: --model is required (or --rescore EVAL_JSON)")
    p = sre_llm("eval", "missing/eval.yaml", "--model", ".", cwd=workdir)
    assert (p.returncode, p.stderr.strip()) == (2, "missing/eval.yaml: eval config not found; run `sre-llm render SPEC` first")
    (workdir / "data").mkdir()
    p = sre_llm("eval", "eval.yaml", "--model", ".", cwd=workdir)
    assert (p.returncode, p.stderr.strip()) == (2, "data/test.jsonl: test split not found; run `sre-llm dataset build SPEC` first")
    (workdir / "data/test.jsonl").write_text('{"input": "a", "output": "LambdaFunction: none\\nParameters: {}"}\n')
    p = sre_llm("eval", "eval.yaml", "--model", "data", cwd=workdir)
    assert (p.returncode, p.stderr.strip()) == (2, "--model data: no adapter (adapter_config.json) or model (config.json + weights) found there or in data/output")
    p = sre_llm("eval", "eval.yaml", "--rescore", "eval.yaml", cwd=workdir)
    assert p.returncode == 2 and p.stderr.startswith("eval.yaml: cannot read eval results")


def test_report_contents(workdir: Path):
    from sre_llm.evaluate.harness import write_results

    write_results(rescore(workdir / "eval.json", workdir / "eval.yaml"), workdir / "r")
    md = (workdir / "r/report.md").read_text()
    assert "| parameter accuracy | 38.5 % | ≥ 95.0 % | ❌ fail |" in md
    assert "| false positives | 2 |" in md
    # The stub alerts carry no resource labels, so the guard refuses every action as ungrounded,
    # three of them right answers (0, 1, 11): the report must show that cost.
    assert "| output guard: actions allowed / refused / right answers blocked | 0 / 10 / 3 |" in md
    assert "![loss](loss.png)" in md
    assert "| 7 | alertname: A7 · namespace: shop |" in md  # the worst mistake comes first
    html = (workdir / "r/report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "src=\"confusion.png\"" not in html
    first = html.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(first)[:8] == b"\x89PNG\r\n\x1a\n"
    # Same data, same bytes: no timestamps anywhere.
    write_results(rescore(workdir / "eval.json", workdir / "eval.yaml"), workdir / "r2")
    for name in ("report.md", "report.html", "confusion.png", "eval.json"):
        assert (workdir / "r" / name).read_bytes() == (workdir / "r2" / name).read_bytes(), name


def test_report_names_the_base_model_of_a_full_fine_tune(workdir: Path):
    """A full fine-tune loads the trained folder as ``model.base``: the report's base row must
    name the untrained model it started from, not that folder."""
    from sre_llm.evaluate import report

    result = rescore(workdir / "eval.json", workdir / "eval.yaml")
    full = {**result, "model": {"kind": "full", "base": "runs/x/output", "adapter": None, "template": "qwen", "path": "runs/x"}}
    base_row = ["base", "/models/tiny"]
    assert base_row in report.sections({**full, "model": {**full["model"], "base_model": "/models/tiny"}})["facts"]
    # An eval.json from before model.base_model: the baseline's model, else "not recorded".
    assert base_row in report.sections({**full, "baseline": {"model": "/models/tiny", "scores": result["scores"]}})["facts"]
    assert ["base", "not recorded"] in report.sections(full)["facts"]
    assert ["base", "/nowhere/base"] in report.sections(result)["facts"]  # an adapter: its base


def test_encrypted_test_split_is_read_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pyrage = pytest.importorskip("pyrage")
    from sre_llm.dataset.crypto import encrypt
    from sre_llm.evaluate.gates import load_eval_config
    from sre_llm.evaluate.harness import load_test_split

    ident = pyrage.x25519.Identity.generate()
    plain = b'{"input": "alertname: Watchdog", "output": "LambdaFunction: none\\nParameters: {}"}\n'
    (tmp_path / "data").mkdir()
    (tmp_path / "data/test.jsonl.age").write_bytes(encrypt(plain, [str(ident.to_public())]))
    (tmp_path / "eval.yaml").write_text(EVAL_YAML.format(acc=0.9, par=0.95, fp=0.05))
    config = load_eval_config(tmp_path / "eval.yaml")
    with pytest.raises(Exception) as exc:
        load_test_split(config, tmp_path)
    assert str(exc.value).endswith("test.jsonl.age: the test split is encrypted; evaluate through the spec (it names the identity) or decrypt it first")
    monkeypatch.setenv("EVAL_TEST_AGE_KEY", str(ident))
    path, rows, sha = load_test_split(config, tmp_path, identity="env:EVAL_TEST_AGE_KEY")
    assert path.name == "test.jsonl.age" and rows == [json.loads(plain)]
    assert sha == __import__("hashlib").sha256(plain).hexdigest()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["test.jsonl.age"]  # no plaintext written


def test_resolve_model_forms(tmp_path: Path):
    from sre_llm.errors import BadInput
    from sre_llm.evaluate.engine import resolve_model

    config = {"model": {"base": "/models/base", "template": "qwen", "quantization_bit": 4}}
    (tmp_path / "run/output").mkdir(parents=True)
    (tmp_path / "run/output/adapter_config.json").write_text("{}")
    ref = resolve_model(tmp_path / "run", config)
    assert (ref.base, ref.adapter, ref.kind, ref.quantization_bit) == ("/models/base", str(tmp_path / "run/output"), "adapter", 4)
    (tmp_path / "full").mkdir()
    (tmp_path / "full/config.json").write_text("{}")
    (tmp_path / "full/model.safetensors").write_bytes(b"")
    ref = resolve_model(tmp_path / "full", config)
    assert (ref.base, ref.adapter, ref.kind, ref.finetuning_type) == (str(tmp_path / "full"), None, "full", "full")
    with pytest.raises(BadInput):
        resolve_model(tmp_path, config)


def test_common_prefix_leaves_every_prompt_a_token():
    from sre_llm.evaluate.engine import common_prefix

    assert common_prefix([[1, 2, 3, 4], [1, 2, 3, 9, 9], [1, 2, 5]]) == [1, 2]
    assert common_prefix([[1, 2, 3], [1, 2, 3, 4]]) == [1, 2]  # the shorter keeps its last token
    assert common_prefix([[7, 8]]) == [7] and common_prefix([]) == []
