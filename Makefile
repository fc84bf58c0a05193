# sre-llm — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SRE := $(VENV)/bin/sre-llm
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export DO_NOT_TRACK := 1

.PHONY: help setup setup-serve setup-system test test-fast demo render check schema docs bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: ## Create .venv with sre-llm and LLaMA Factory; no root (idempotent; seconds when nothing changed)
	@bash scripts/setup.sh

setup-serve: ## Create .venv-serve with vLLM for the CPU, for `sre-llm serve` and its tests (Python 3.11+)
	@bash scripts/setup-serve.sh

setup-system: ## Install the Debian packages the tests run: Prometheus, Alertmanager, Pushgateway, age, docker-registry, kubectl (root or sudo)
	@bash scripts/setup-system.sh

test: setup setup-serve setup-system ## Run every test (what CI runs)
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

BENCHES := render_startup dataset_pipeline sign_verify eval_batching train_overhead oci_roundtrip gateway_overhead receiver_load

bench: setup setup-serve setup-system ## Every benchmark (JSON each); figures stamped into docs/figures/bench.json and the README (~25 min on 2 cores)
	@mkdir -p .cache/bench
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py $$( [ $$b = gateway_overhead ] && echo --build .cache/bench/served ) > .cache/bench/$$b.json || exit 1; cat .cache/bench/$$b.json; done
	$(PY) -m sre_llm.figures bench .cache/bench --readme README.md

clean: ## Remove caches and run outputs (keeps .venv)
	rm -rf .cache runs datasets .pytest_cache
