#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded defaults (tiny local model, CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
SRE=.venv/bin/sre-llm
SPEC=specs/tiny-cpu.yaml
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 DO_NOT_TRACK=1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. validate $SPEC"
$SRE validate "$SPEC"

step "2. render LLaMA Factory configs"
$SRE render "$SPEC"

step "3. preflight (what this machine lacks for the spec)"
$SRE preflight "$SPEC" || true

printf '\nrendered configs: rendered/sre-remediation-tiny/0.1.0/\n'
