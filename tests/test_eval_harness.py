"""The harness on real models: the session's tiny model, trained briefly by LLaMA Factory,
evaluated through its ChatModel, against the untrained base, with the adversarial suite.

The session fixture ``trained_tiny`` builds it once (about two minutes on 2 cores); the gateway's
tests serve the same model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.llamafactory]

ROOT = Path(__file__).resolve().parent.parent
EVAL_YAML = """\
model: {{base: {base}, revision: null, template: qwen, finetuning_type: full, quantization_bit: null}}
data: {{dataset_dir: datasets/sre-remediation-synthetic/current, test_dataset: sre_remediation_synthetic_test, min_test_examples: 20}}
generation: {{batch_size: 16, max_new_tokens: 96, do_sample: false, temperature: 0.0, cutoff_len: 512}}
gates: {{remediation_accuracy_min: 0.9, parameter_accuracy_min: 0.95, false_positive_rate_max: 0.05, p95_latency_ms_max: 500.0}}
suite: {{adversarial: true, baseline: base}}
"""
# One thread: on 2 busy cores a 1 M-parameter model is several times faster without OpenMP contention.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="session")
def project(trained_tiny) -> dict[str, Path]:
    """The session's trained tiny model (tests/helpers/serving.py: a tiny base model, a 600-alert
    synthetic dataset, two epochs; its run.json records the label-reference answer format), with
    an eval.yaml beside it."""
    root = trained_tiny["root"]
    (root / "eval.yaml").write_text(EVAL_YAML.format(base=trained_tiny["base"]))
    return trained_tiny


def test_trained_model_beats_base_and_guard_holds(project):
    root = project["root"]
    p = subprocess.run([sys.executable, "-m", "sre_llm", "eval", "eval.yaml", "--model", "runs/tiny/1", "--threads", "1",
                        "--latency-samples", "8", "--json"], cwd=root, env=ENV, check=False, capture_output=True, text=True, timeout=600)
    summary = json.loads(p.stdout)
    assert p.returncode == (0 if summary["passed"] else 1), p.stderr[-2000:]
    if not summary["passed"]:
        assert p.stderr.strip().splitlines()[-1] == summary["failure"]
    # Training, not the harness, earns the score: the untrained base never answers in format.
    assert summary["deltas"]["remediation_accuracy"] > 0
    assert summary["scores"]["remediation_accuracy"] > 0
    adv = summary["adversarial"]
    assert (adv["cases"], adv["attacked_cases"], adv["unsafe_after_guard"], adv["obedient_unsafe"]) == (27, 24, 0, [])

    result = json.loads((root / "runs/tiny/1/eval/eval.json").read_text())
    rows = project["test"].read_text().splitlines()
    assert len(result["predictions"]) == len(rows) == result["scores"]["examples"]
    assert [p["expected"] for p in result["predictions"]] == [json.loads(r)["output"] for r in rows]
    assert all({"output", "judgement", "guard", "batch_ms"} <= set(p) for p in result["predictions"])
    assert result["baseline"]["scores"]["unparseable"] == len(rows)
    assert result["scores"]["latency"]["samples"] == 8
    # Batched generation and ChatModel.chat one at a time give the same greedy answers.
    assert result["generation"]["probe_agreement"] >= 0.875
    assert result["loss_curves"]["train"] and result["loss_curves"]["eval"]
    for name in ("report.md", "report.html", "confusion.png", "latency.png", "loss.png", "baseline.png"):
        assert (root / "runs/tiny/1/eval" / name).is_file(), name

    # Raw and grounded side by side; the gates judge the grounded answers (what is served).
    from sre_llm.answer import alert_from_input, allowed_answers

    assert (result["answer_format"], result["judged_on"]) == ("labelref-v1", "grounded")
    grounded = result["grounded"]["scores"]
    assert grounded["examples"] == len(rows) and grounded["unparseable"] == 0
    by_name = {g["name"]: g["value"] for g in result["gates"]}
    assert by_name["parameter_accuracy"] == grounded["parameter_accuracy"]
    for p in result["predictions"]:
        labels, ann = alert_from_input(p["input"])
        assert allowed_answers(labels, ann, "labelref-v1").automaton().matches(p["grounded"]["output"]), p["grounded"]["output"]
    report = (root / "runs/tiny/1/eval/report.md").read_text()
    assert "| figure | this model (raw) | grounded | base model | Δ (raw) |" in report


def test_adapter_is_loaded_on_the_base(project, tmp_path):
    """A LoRA adapter whose B matrices are zero (peft's initialisation) must answer exactly like
    the base: proves the adapter path loads base + adapter, not something else."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sre_llm.evaluate.harness import evaluate

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(project["base"]), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(tmp_path / "adapter")
    result = evaluate(project["root"] / "eval.yaml", tmp_path / "adapter", baseline="base", adversarial=False,
                      latency_samples=2, threads=1, root=project["root"])
    assert result["model"]["kind"] == "adapter" and result["model"]["adapter"] == str(tmp_path / "adapter")
    assert [p["output"] for p in result["predictions"]] == [p["output"] for p in result["baseline"]["predictions"]]
    assert result["deltas"]["remediation_accuracy"] == 0
    assert result["adversarial"] is None


def test_batched_greedy_loop_answers_exactly_like_chat(project, monkeypatch):
    """The batched loop (rows leave the batch when they stop, shared prefix cache) and the same
    loop with a cache that cannot shrink both give ChatModel.chat's answers, row for row."""
    from transformers import DynamicCache

    from sre_llm.evaluate.engine import Generator, ModelRef

    gen = Generator(ModelRef(str(project["run"] / "output"), None, "qwen", "full"), 64, 512, threads=1)
    rows = [json.loads(r) for r in project["test"].read_text().splitlines()[:24]]
    one_by_one = [gen.chat(r["instruction"], r["input"]) for r in rows]
    assert [r["output"] for r in gen.run(rows, 8)] == one_by_one
    assert [r["output"] for r in gen.run(rows, 8, prefix_cache=False)] == one_by_one
    owner = next(c for c in DynamicCache.__mro__ if "batch_select_indices" in vars(c))
    monkeypatch.delattr(owner, "batch_select_indices")
    assert not hasattr(DynamicCache(), "batch_select_indices")
    assert [r["output"] for r in gen.run(rows, 8)] == one_by_one
    assert len({len(a) for a in one_by_one}) > 1  # answers of different lengths: rows did stop at different steps


def test_grounded_decoding_keeps_every_allowed_greedy_answer(project):
    """Grounding only steps in where the model leaves the allowed answers: a row whose greedy
    answer is allowed gets exactly that answer, and every grounded answer is allowed."""
    from sre_llm.evaluate.engine import Generator, ModelRef
    from sre_llm.evaluate.harness import groundings

    gen = Generator(ModelRef(str(project["run"] / "output"), None, "qwen", "full"), 96, 512, threads=1)
    rows = [json.loads(r) for r in project["test"].read_text().splitlines()[:32]]
    autos = groundings(rows, "labelref-v1")
    raw = [r["output"] for r in gen.run(rows, 8)]
    grounded = [r["output"] for r in gen.run(rows, 8, constraints=autos)]
    assert all(a.matches(g) for a, g in zip(autos, grounded)), grounded
    kept = [(r, g) for a, r, g in zip(autos, raw, grounded) if a.matches(r)]
    assert kept and all(r == g for r, g in kept)


def test_champion_baseline_scores_like_for_like(project, tmp_path):
    """The champion is scored exactly as the challenger is (its own answer format, grounded): the
    same model as its own champion differs by exactly nothing."""
    from sre_llm.evaluate.harness import evaluate

    rows = project["test"].read_text().splitlines()[:24]
    (tmp_path / "golden.jsonl").write_text("\n".join(rows) + "\n")
    result = evaluate(project["root"] / "eval.yaml", project["run"], baseline="champion", adversarial=False,
                      baseline_model=project["run"] / "output", baseline_format="labelref-v1", test=tmp_path / "golden.jsonl",
                      latency_samples=0, threads=1, root=project["root"])
    base = result["baseline"]
    assert (base["kind"], base["answer_format"]) == ("champion", "labelref-v1")
    assert base["grounded"]["scores"]["examples"] == len(rows)
    assert result["deltas"] and all(v == 0 for v in result["deltas"].values() if v is not None)


def test_champion_baseline_needs_a_champion(tmp_path):
    from sre_llm.errors import BadInput
    from sre_llm.evaluate.cli import _champion

    with pytest.raises(BadInput, match="is not registered under"):
        _champion(str(tmp_path), "sre-remediation-tiny")
