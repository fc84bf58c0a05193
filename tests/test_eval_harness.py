"""The harness on real models: a tiny model built here, trained briefly by LLaMA Factory, evaluated
through its ChatModel, against the untrained base, with the adversarial suite.

One session fixture builds everything (about a minute and a half on 2 cores); the tests share it.
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
# cutoff_len 512, not the tiny spec's 256: the instruction alone is 158 tokens of the tiny
# tokenizer, and at 256 training cuts 36 of 43 test-shaped examples before the alert's values
# (measured: 5 % function accuracy at 256, 70 % at 512, same 3 epochs).
TRAIN_YAML = """\
model_name_or_path: {base}
stage: sft
do_train: true
finetuning_type: full
dataset: sre_remediation_synthetic_train
eval_dataset: sre_remediation_synthetic_validation
dataset_dir: {data}
template: qwen
cutoff_len: 512
overwrite_cache: true
preprocessing_num_workers: 1
dataloader_num_workers: 0
output_dir: {out}
logging_steps: 5
save_strategy: "no"
report_to: none
disable_tqdm: true
per_device_train_batch_size: 8
learning_rate: 0.003
num_train_epochs: 2.0
lr_scheduler_type: cosine
warmup_steps: 10
use_cpu: true
seed: 42
per_device_eval_batch_size: 16
eval_strategy: steps
eval_steps: 40
"""
EVAL_YAML = """\
model: {{base: {base}, revision: null, template: qwen, finetuning_type: full, quantization_bit: null}}
data: {{dataset_dir: datasets/sre-remediation-synthetic/current, test_dataset: sre_remediation_synthetic_test, min_test_examples: 20}}
generation: {{batch_size: 16, max_new_tokens: 64, do_sample: false, temperature: 0.0, cutoff_len: 512}}
gates: {{remediation_accuracy_min: 0.9, parameter_accuracy_min: 0.95, false_positive_rate_max: 0.05, p95_latency_ms_max: 500.0}}
suite: {{adversarial: true, baseline: base}}
"""
# One thread: on 2 busy cores a 1 M-parameter model is several times faster without OpenMP contention.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project folder with a tiny base model, a 600-alert synthetic dataset and a trained run."""
    from sre_llm.basemodel.tiny import TinyConfig, build_tiny
    from sre_llm.dataset.build import build
    from sre_llm.spec.load import load_spec

    root = tmp_path_factory.mktemp("evalproj")
    base = root / "models/tiny"
    build_tiny(base, TinyConfig(pretrain_steps=0, threads=1))
    spec = (ROOT / "specs/tiny-cpu.yaml").read_text().replace("count: 2000", "count: 600").replace("min_examples: 500", "min_examples: 50")
    (root / "spec.yaml").write_text(spec)
    built = build(load_spec(root / "spec.yaml").release, root=root)
    run = root / "runs/tiny/1"
    (root / "train.yaml").write_text(TRAIN_YAML.format(base=base, data=built.path, out=run / "output"))
    proc = subprocess.run([str(Path(sys.executable).parent / "llamafactory-cli"), "train", str(root / "train.yaml")],
                          cwd=root, env=ENV, check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "eval.yaml").write_text(EVAL_YAML.format(base=base))
    return {"root": root, "base": base, "run": run, "test": built.path / "test.jsonl"}


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
