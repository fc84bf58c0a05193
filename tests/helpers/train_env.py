"""Helpers for the training tests: a small alpaca dataset, spec files in tmp_path, tiny models.

The dataset is made here on purpose (the dataset pipeline is tested on its own): realistic alerts
→ ``LambdaFunction: <name>`` / ``Parameters: <JSON>`` answers, half with made-up values so that only
copying from the alert lowers the loss, labels in a fixed order (what TINY-MODEL.md measured best).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRE_LLM = [sys.executable, "-m", "sre_llm"]

INSTRUCTION = (
    "You are agent-sre's remediation planner. Choose one LambdaFunction for the firing alert and "
    "copy parameter values from its labels. Answer in two lines: LambdaFunction: <name> and Parameters: <JSON>."
)
APPS = "web checkout payments cart auth search orders billing gateway worker ingest ledger api".split()
NAMESPACES = "default production shop payments data platform monitoring backend frontend".split()
ALERTS = [
    # alertname, resource label, function, parameter keys (label → parameter)
    ("KubePodCrashLooping", "pod", "pod-restart", {"pod": "name", "namespace": "namespace"}),
    ("PodNotReady", "pod", "pod-check-status", {"pod": "name", "namespace": "namespace"}),
    ("KubeDeploymentReplicasMismatch", "deployment", "scale-deployment", {"deployment": "name", "namespace": "namespace"}),
    ("KubePersistentVolumeFillingUp", "persistentvolumeclaim", "check-pvc-status", {"persistentvolumeclaim": "name", "namespace": "namespace"}),
    ("FluxKustomizationReconciliationFailed", "kustomization", "flux-reconcile-kustomization", {"kustomization": "name", "namespace": "namespace"}),
    ("FluxHelmReleaseNotReady", "helmrelease", "flux-reconcile-helmrelease", {"helmrelease": "name", "namespace": "namespace"}),
    ("Watchdog", None, "none", {}),
]


HASHES = ("7d4f9c6b8-x2x9q", "5b7c8d9f4-k8m2p", "66f9d7c5d-zq4wn", "84c6b5f7d-t2r9j")


def _value(r: random.Random, resource: str) -> str:
    # Values from small sets keep a 30-step CPU test learnable; copying arbitrary values is what
    # the evaluator's longer training is for.
    app = r.choice(APPS)
    if resource == "pod":
        return f"{app}-{r.choice(HASHES)}"
    return app if r.random() < 0.5 else f"{app}-{r.choice(('api', 'db', 'cache', 'v2'))}"


def example(r: random.Random) -> dict:
    alertname, resource, function, keys = r.choice(ALERTS)
    ns = r.choice(NAMESPACES)
    labels = {"alertname": alertname, "namespace": ns}
    if resource:
        labels[resource] = _value(r, resource)
    labels["severity"] = r.choice(("critical", "warning"))
    params = {p: labels[k] for k, p in keys.items()}
    text = "\n".join(f"{k}: {v}" for k, v in labels.items())
    answer = f"LambdaFunction: {function}\nParameters: {json.dumps(params, sort_keys=True)}"
    return {"instruction": INSTRUCTION, "input": f"Alert labels:\n{text}", "output": answer}


def write_dataset(folder: Path, n_train: int = 240, n_eval: int = 40, seed: int = 0, broken: bool = False) -> Path:
    """``folder`` laid out like the dataset pipeline's ``current``; ``broken`` makes every output a
    JSON object instead of a string (LLaMA Factory then finds no valid sample)."""
    r = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        rows = [example(r) for _ in range(n)]
        if broken:
            rows = [{**row, "output": {"text": row["output"]}} for row in rows]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    return folder


def spec_text(name: str, model: Path, family: str, method: str = "lora", *, lr: float = 5e-3, epochs: float = 3,
              max_steps: int | None = None, save_steps: int = 20, logging_steps: int = 5, dataset: str = "alerts",
              extra_training: str = "") -> str:
    steps = f"\n    max_steps: {max_steps}" if max_steps else ""
    quant = "\n    quantization: {bits: 4, type: nf4, double_quantization: true}" if method == "qlora" else ""
    lora = "\n    lora: {rank: 16, alpha: 32, dropout: 0.0, targets: [all]}" if method in ("lora", "qlora") else ""
    return f"""apiVersion: sre-llm/v1
kind: ModelRelease
metadata:
  name: {name}
  version: 0.1.0
spec:
  base_model:
    path: {model}
    family: {family}
  dataset:
    name: {dataset}
    min_examples: 10
  training:
    method: {method}{lora}{quant}
    learning_rate: {lr}
    batch_size: 8
    gradient_accumulation: 1
    epochs: {epochs}{steps}
    warmup_steps: 2
    scheduler: cosine
    optimizer: adamw_torch
    cutoff_len: 256
    precision: fp32
    device: cpu
    gradient_checkpointing: false
    flash_attn: sdpa
    logging_steps: {logging_steps}
    save_steps: {save_steps}
    eval_steps: 1000
    eval_batch_size: 16{extra_training}
  evaluation:
    min_test_examples: 10
"""


def project(tmp: Path, spec: str, dataset: str = "alerts", **data_kw: object) -> Path:
    """A project folder: specs/x.yaml and datasets/<dataset>/current (a symlink, like the pipeline's)."""
    (tmp / "specs").mkdir(parents=True, exist_ok=True)
    (tmp / "specs" / "x.yaml").write_text(spec)
    built = write_dataset(tmp / "datasets" / dataset / "0123456789abcdef", **data_kw)  # type: ignore[arg-type]
    os.symlink(built.name, tmp / "datasets" / dataset / "current")
    return tmp / "specs" / "x.yaml"


def tiny_model(base_temp: Path, family: str, steps: int) -> Path:
    """Build the tiny model once per test session (the folder is shared by every test module)."""
    out = base_temp / "tiny-models" / f"{family}-{steps}"
    if not (out / "config.json").is_file():
        proc = sremain(["base-model", "tiny", "--family", family, "--out", str(out), "--pretrain-steps", str(steps)], cwd=base_temp)
        assert proc.returncode == 0, proc.stderr
    return out


def sremain(args: list[str], cwd: Path, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(SRE_LLM + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kw)
