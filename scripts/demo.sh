#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded defaults — a tiny Qwen2-architecture model
# built on this machine, the synthetic alert corpus, CPU training with LLaMA Factory, evaluation
# against the gates, then register → sign → verify → promote in a throw-away GitOps repository.
# Nothing is downloaded; nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SRE="$PWD/.venv/bin/sre-llm"
SPEC=specs/tiny-cpu.yaml
NAME=sre-remediation-tiny
VERSION=0.1.0
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 DO_NOT_TRACK=1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$(date +%s)

step "1/7 validate and render $SPEC"
$SRE validate "$SPEC"
$SRE render "$SPEC"

step "2/7 build the training set (synthetic alerts → label → redact → dedupe → split)"
$SRE dataset build "$SPEC"

step "3/7 build the tiny base model (its own tokenizer + the Qwen2 architecture, random weights, offline)"
if [ -f .cache/models/tiny-qwen2/config.json ]; then
  echo "already built: .cache/models/tiny-qwen2"
else
  $SRE base-model tiny --family qwen2 --out .cache/models/tiny-qwen2
fi

step "4/7 fine-tune with LLaMA Factory on the CPU"
$SRE train "$SPEC"
RUN=$(ls -1d runs/$NAME/$VERSION/*/ | sort | tail -n 1)
RUN=${RUN%/}

step "5/7 evaluate on the held-out test split against the gates (vs the untrained base)"
gates=0
$SRE eval "$SPEC" --model "$RUN" --baseline base || gates=$?
[ "$gates" -le 1 ] || exit "$gates"

step "6/7 register, sign, verify and promote in a throw-away GitOps repository"
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/sre-llm-demo.XXXXXX")/gitops
mkdir -p "$DEMO/specs"
git -C "$DEMO" init -q
git -C "$DEMO" config user.name "sre-llm demo"
git -C "$DEMO" config user.email demo@localhost
cp "$SPEC" "$DEMO/specs/"
$SRE registry keygen "$DEMO/.cache/keys/signing-key.pem" "$DEMO/.cache/keys/signing-key.pub.pem"
MODEL_DIR="$RUN/output"
$SRE register "$DEMO/specs/tiny-cpu.yaml" --root "$DEMO" --model "$MODEL_DIR" \
  --metrics "$RUN/eval/eval.json" --run "$RUN/run.json"
$SRE sign "$VERSION" --root "$DEMO"
$SRE verify "$VERSION" --root "$DEMO"
promoted=yes
$SRE promote "$VERSION" --root "$DEMO" || promoted="no (a gate failed: see the report)"
$SRE audit verify --root "$DEMO"

step "7/7 where everything is"
cat <<TXT
rendered configs : rendered/$NAME/$VERSION/ and rendered/$NAME/k8s/
dataset          : datasets/sre-remediation-synthetic/current/ (card: README.md, dataset_card.json)
base model       : .cache/models/tiny-qwen2/
training run     : $RUN/ (run.json, train.log, output/)
evaluation       : $RUN/eval/report.html, report.md, eval.json
gitops repo      : $DEMO (registry/, audit/audit.jsonl, git log)
gates            : $([ "$gates" -eq 0 ] && echo passed || echo "not all met (see the gate table above)")
promoted         : $promoted
took             : $(( $(date +%s) - started )) s
TXT
