#!/usr/bin/env bash
# Create .venv and install sre-llm with its training stack, idempotently.
# A second run with nothing changed takes a second: the install is keyed by a digest of the
# files that decide it (pyproject.toml, constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.sre-llm-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: $VENV is up to date"
else
  echo "setup: installing sre-llm[train,dataset,registry,eval,test] into $VENV (first run: a few minutes)"
  # torch 2.14.1 + torchaudio 2.11.1 is the set INSTALL.md measured with LLaMA Factory 0.9.5;
  # constraints.txt pins every package so CI and users get the same set.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,dataset,registry,eval,test]'
  echo "$want" > "$STAMP"
fi

bash scripts/setup-system.sh
bash scripts/setup-serve.sh
