# The two commands of the README: `make run` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-faults test-unit test-integration test-e2e lint typecheck bench infra venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

infra:
	bash scripts/ensure-infra.sh

## Run the whole system (six services as separate processes) and play the narrated demo.
run: venv infra
	$(PY) -m scripts.run_system

## Lint, type-check, then every test tier against real PostgreSQL, RabbitMQ and SMTP.
test: venv infra lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## The whole fault suite (private RabbitMQ, RabbitMQ cluster and PostgreSQL; about 20 minutes).
test-faults: venv infra
	FAULTS=full $(PY) -m pytest -q -p no:cacheprovider -m faults tests/faults $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -q tests/unit

test-integration: venv infra
	$(PY) -m pytest -q tests/integration

test-e2e: venv infra
	$(PY) -m pytest -q tests/e2e

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

bench: venv infra
	$(PY) -m bench.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .run
