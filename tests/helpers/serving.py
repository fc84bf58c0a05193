"""The one trained tiny model of the test session: the tiny base model, the synthetic dataset
(the spec's default answer format), two epochs of LLaMA Factory full fine-tuning on the CPU (about
two minutes on 2 cores). The session fixture ``trained_tiny`` (tests/conftest.py) builds it once
for the evaluator's and the gateway's tests; the gateway benchmark builds it by hand. Nothing
lands in the repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVE_PY = ROOT / ".venv-serve" / "bin" / "python"
# cutoff_len 512: the instruction alone is ~158 tokens of the tiny tokenizer (see test_eval_harness.py).
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
logging_steps: 10
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
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def trained_project(root: Path, count: int = 600) -> dict[str, Path]:
    """``root`` with ``spec.yaml``, the dataset, and the run ``runs/tiny/1``: ``output/`` (a full
    model folder, with the trainer's log) and ``run.json`` (the answer format, as `sre-llm train`
    records it)."""
    from sre_llm.basemodel.tiny import TinyConfig, build_tiny
    from sre_llm.dataset.build import build
    from sre_llm.spec.load import load_spec

    root = Path(root).resolve()  # llamafactory-cli runs in root: a relative config path would double
    base = root / "models/tiny"
    build_tiny(base, TinyConfig(pretrain_steps=0, threads=1))
    # The shipped tiny spec with a smaller corpus and a fixed split (~120 held-out alerts).
    spec = (ROOT / "specs/tiny-cpu.yaml").read_text()
    spec = re.sub(r"(?m)^(\s+)count: \d+", rf"\g<1>count: {count}", spec)
    spec = re.sub(r"(?m)^(\s+)split: \{[^}]*\}", r"\g<1>split: {train: 0.8, validation: 0.1, test: 0.1}", spec)
    spec = re.sub(r"(?m)^(\s+)min_examples: \d+", r"\g<1>min_examples: 50", spec)
    spec = re.sub(r"(?m)^(\s+)min_test_examples: \d+", r"\g<1>min_test_examples: 20", spec)
    (root / "spec.yaml").write_text(spec)
    built = build(load_spec(root / "spec.yaml").release, root=root)
    run = root / "runs/tiny/1"
    out = run / "output"
    (root / "train.yaml").write_text(TRAIN_YAML.format(base=base, data=built.path, out=out))
    proc = subprocess.run([str(Path(sys.executable).parent / "llamafactory-cli"), "train", str(root / "train.yaml")],
                          cwd=root, env=ENV, check=False, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    from sre_llm.execute import serving_files

    serving_files.write(out, "qwen")  # as `sre-llm train` does when a run succeeds: what vLLM is given
    (run / "run.json").write_text(json.dumps({"run_id": "1", "status": "succeeded",
                                              "answer_format": built.card.get("answer_format") or "literal-v1"}))
    return {"root": root, "base": base, "run": run, "model": out, "spec": root / "spec.yaml",
            "test": built.path / "test.jsonl"}


if __name__ == "__main__":  # python -m tests.helpers.serving DIR: build it once by hand (benchmarks)
    print(trained_project(Path(sys.argv[1])))
