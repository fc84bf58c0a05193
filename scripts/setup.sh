#!/usr/bin/env bash
# Create .venv and install sre-llm with its training stack, idempotently. No root needed: this is
# all `make demo` sets up. The tests' Debian packages (scripts/setup-system.sh) and the serving
# venv (scripts/setup-serve.sh) are separate steps that `make test` adds.
# A second run with nothing changed takes a second: the install is keyed by a digest of the
# files that decide it (pyproject.toml, constraints.txt).
#
#   PYTHON=python3.12 scripts/setup.sh     # default: the first of python3, python3.14 … python3.11
#
# Python 3.11+: LLaMA Factory 0.9.5 declares Requires-Python >=3.11. The core alone
# (`pip install .`: validate, render, schema) runs on 3.10.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.sre-llm-installed
NEED_GB=8  # .venv is about 7 GB (torch from PyPI brings its CUDA libraries, even on a CPU machine)
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)

die() { echo "setup: $*" >&2; exit 1; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi

fits() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
version() { "$1" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo "not found"; }
if [ -n "${PYTHON:-}" ]; then
  fits "$PYTHON" || die "PYTHON=$PYTHON is Python $(version "$PYTHON"); the training stack (LLaMA Factory 0.9.5) needs 3.11+"
  PY=$PYTHON
else
  PY=
  for candidate in python3 python3.14 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && fits "$candidate"; then PY=$candidate; break; fi
  done
  [ -n "$PY" ] || die "the training stack (LLaMA Factory 0.9.5) needs Python 3.11+ and python3 is $(version python3); install python3.11 (and python3.11-venv) or set PYTHON=/path/to/python3.X"
fi

free_gb=$(df -Pk . | awk 'NR == 2 {print int($4 / 1048576)}')
if [ "${free_gb:-0}" -lt "$NEED_GB" ]; then
  echo "setup: warning: ${free_gb} GB free here; $VENV needs about $NEED_GB GB (README: Install)" >&2
fi

# A venv left without pip (Debian's python3 without python3-venv, or an interrupted first run)
# is made again rather than failing later inside pip.
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "setup: $VENV has no working pip; creating it again"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PY ($(version "$PY"))"
  if ! "$PY" -m venv "$VENV"; then
    rm -rf "$VENV"
    die "$PY -m venv failed; on Debian/Ubuntu install python3-venv (or python3.X-venv), or set PYTHON to a Python with venv"
  fi
fi

echo "setup: installing sre-llm[train,dataset,registry,eval,serve,loop,test] into $VENV (first run: about 3 minutes and several GB of downloads)"
# constraints.txt pins every package (LLaMA Factory 0.9.5 with torch 2.14.1, transformers 5.6, …),
# so CI and users get the set the tests ran with; pyproject.toml keeps only ranges.
"$VENV/bin/pip" install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,dataset,registry,eval,serve,loop,test]'
echo "$want" > "$STAMP"
echo "setup: $VENV ready"
