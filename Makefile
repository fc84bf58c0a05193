# sre-llm — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SRE := $(VENV)/bin/sre-llm
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export DO_NOT_TRACK := 1

.PHONY: help setup test test-fast demo render check schema docs bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Create .venv with sre-llm and LLaMA Factory (idempotent; seconds when nothing changed)
	@bash scripts/setup.sh

test: setup ## Run every test (what CI runs)
	$(PY) -m pytest -q

test-fast: setup ## Tests without LLaMA Factory, Prometheus or training
	$(PY) -m pytest -q -m "not llamafactory and not slow"

demo: setup ## End to end on the embedded defaults: tiny local model, synthetic data, CPU
	@bash scripts/demo.sh

render: setup ## Re-render every shipped spec into rendered/
	$(SRE) render specs/*.yaml

check: setup ## What CI checks before tests: specs valid, rendered/ and the schema up to date
	$(SRE) validate specs/*.yaml
	$(SRE) render --check specs/*.yaml
	$(SRE) schema --out schema/model-release.schema.json --check

schema: setup ## Regenerate the JSON Schema and the README's spec reference
	$(SRE) schema --out schema/model-release.schema.json
	$(PY) -m sre_llm.docs --readme README.md

bench: setup ## Every benchmark, one JSON object per line (about 15 minutes on 2 cores)
	$(PY) bench/render_startup.py
	$(PY) bench/dataset_pipeline.py
	$(PY) bench/sign_verify.py
	$(PY) bench/eval_batching.py
	$(PY) bench/train_overhead.py

clean: ## Remove caches and run outputs (keeps .venv)
	rm -rf .cache runs datasets .pytest_cache
