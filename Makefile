# The two commands of the README: `make run` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-faults test-unit test-integration test-e2e lint typecheck bench infra venv tools asyncapi rules reset clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# The AsyncAPI project's parser (Node.js), which the tests validate docs/asyncapi.json with.
ASYNCAPI_TOOLS := tools/asyncapi/node_modules/.package-lock.json
$(ASYNCAPI_TOOLS): tools/asyncapi/package-lock.json
	command -v npm >/dev/null || { echo "npm is needed (Node.js): apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix tools/asyncapi --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

tools: $(ASYNCAPI_TOOLS)

## Regenerate docs/rules.md's proof table from the tests and the last `make test` run.
rules: venv
	$(PY) -m scripts.rules

## Regenerate docs/asyncapi.json from the contracts (a test fails when it is stale).
asyncapi: venv tools
	$(PY) -m scripts.asyncapi > docs/asyncapi.json
	node tools/asyncapi/validate.mjs docs/asyncapi.json --strict

infra:
	bash scripts/ensure-infra.sh

## Run the whole system (six services as separate processes) and play the narrated demo.
run: venv infra
	$(PY) -m scripts.run_system

## Drop what `make run` made (its database and demo clock, broker users and queues, .run/).
reset: venv infra
	$(PY) -m scripts.run_system reset

## Lint, type-check, then every test tier against real PostgreSQL, RabbitMQ and SMTP.
test: venv tools infra lint typecheck
	mkdir -p .run && $(PY) -m pytest -q -p no:cacheprovider --junitxml=.run/junit$(if $(PYTEST_ARGS),-partial,).xml $(PYTEST_ARGS)

## The whole fault suite (private RabbitMQ, RabbitMQ cluster and PostgreSQL; about 20 minutes).
test-faults: venv infra
	FAULTS=full $(PY) -m pytest -q -p no:cacheprovider -m faults tests/faults $(PYTEST_ARGS)

test-unit: venv tools
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
	$(PY) -m bench.tokens

clean:
	rm -rf $(VENV) .run tools/asyncapi/node_modules
