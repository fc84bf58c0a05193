#!/usr/bin/env bash
# Prepared for a GPU machine (not run on the 2-core CPU machine): build the tiny model, train the
# same LoRA config once on the CPU and once on CUDA through `sre-llm train`, print timings as JSON.
#
#   bash scripts/gpu_train_check.sh [VENV=.venv] [STEPS=200]
#
# Needs this repository and a venv with sre-llm[train] (torch with CUDA). Everything happens in a
# scratch folder under ${TMPDIR:-/tmp}; nothing is written to the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${1:-${VENV:-.venv}}
STEPS=${2:-${STEPS:-200}}
PY="$ROOT/$VENV/bin/python"
SRE="$ROOT/$VENV/bin/sre-llm"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 DO_NOT_TRACK=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sre-llm-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PY" - "$ROOT" <<'PY' >&2
import sys, torch
print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}")
if not torch.cuda.is_available():
    sys.exit("no CUDA device: run this on a GPU machine")
PY

cd "$WORK"
t0=$(date +%s.%N)
"$SRE" base-model tiny --family qwen2 --out model --json > build.json
t1=$(date +%s.%N)

for device in cpu cuda; do
  mkdir -p "$device"
  "$PY" - "$ROOT" "$WORK/$device" "$WORK/model" "$device" "$STEPS" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.helpers.train_env import project, spec_text
work, model, device, steps = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
spec = spec_text("gpu-check", model, "qwen2", lr=1e-2, max_steps=steps, save_steps=steps)
spec = spec.replace("device: cpu", f"device: {device}")
project(work, spec, n_train=2000, n_eval=100)
PY
  (cd "$device" && s=$(date +%s.%N) && "$SRE" train specs/x.yaml --json > events.jsonl && e=$(date +%s.%N) \
     && echo "$s $e" > wall.txt)
done

"$PY" - "$WORK" "$t0" "$t1" "$STEPS" <<'PY'
import json, sys
from pathlib import Path
work, t0, t1, steps = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
out = {"check": "gpu_train_check", "steps": steps, "build_tiny_s": round(t1 - t0, 2),
       "build": json.loads((work / "build.json").read_text())["seconds_total"]}
for device in ("cpu", "cuda"):
    s, e = map(float, (work / device / "wall.txt").read_text().split())
    run = sorted((work / device / "runs" / "gpu-check" / "0.1.0").iterdir())[-1]
    rec = json.loads((run / "run.json").read_text())
    out[device] = {"wall_s": round(e - s, 2), "train_runtime_s": rec["final"]["train_runtime_s"],
                   "loss_first": rec["final"]["train_loss_first_logged"], "loss_last": rec["final"]["train_loss_last_logged"],
                   "eval_loss": rec["final"]["eval_loss"], "status": rec["status"]}
out["speedup_train_runtime"] = round(out["cpu"]["train_runtime_s"] / out["cuda"]["train_runtime_s"], 2)
out["speedup_wall"] = round(out["cpu"]["wall_s"] / out["cuda"]["wall_s"], 2)
print(json.dumps(out, indent=2, sort_keys=True))
PY
