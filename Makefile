# The two commands of the README: `make run` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-faults test-hostile test-unit test-integration test-e2e lint typecheck bench infra venv lock tools asyncapi rules reset clean

# Every dependency, runtime and dev, pinned with its hashes (`make lock` makes them from
# pyproject.toml); the venv, CI and the image (deploy/Dockerfile) install from them, then the
# project itself without dependencies.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_VERSION := 0.13.8

$(STAMP): pyproject.toml $(LOCK) $(DEV_LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## Regenerate the lock files after changing a dependency in pyproject.toml (uv, from PyPI):
## the dev lock first, then the runtime one within it, so the two never pin differently.
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make lock"
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV_COMPILE) --extra dev $(LOCK_ARGS) -o $(DEV_LOCK)
	$(UV_COMPILE) --constraint $(DEV_LOCK) -o $(LOCK)

# The AsyncAPI project's parser (Node.js), which the tests validate docs/asyncapi.json with.
ASYNCAPI_TOOLS := tools/asyncapi/node_modules/.package-lock.json
$(ASYNCAPI_TOOLS): tools/asyncapi/package-lock.json
	command -v npm >/dev/null || { echo "npm is needed (Node.js): apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix tools/asyncapi --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# kustomize, which tests/unit/test_k8s.py builds deploy/k8s's overlays with: its own binary, or
# the one built into kubectl (`kubectl kustomize`, which this project's machine image ships).
KUSTOMIZE_CHECK := command -v kustomize >/dev/null || command -v kubectl >/dev/null || { echo \
	"kustomize or kubectl is needed (deploy/k8s): install kubectl, or kustomize >= 5" >&2; exit 1; }

tools: $(ASYNCAPI_TOOLS)
	@$(KUSTOMIZE_CHECK)

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

## The hostile suite with all its examples (`make test` draws half as many).
test-hostile: venv infra
	HOSTILE=full $(PY) -m pytest -q -p no:cacheprovider tests/hostile $(PYTEST_ARGS)

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
	$(PY) -m bench.alerts
	$(PY) -m bench.retention
	$(PY) -m bench.journey

clean:
	rm -rf $(VENV) .run tools/asyncapi/node_modules
