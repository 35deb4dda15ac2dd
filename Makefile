# Every target sets up what it needs: a fresh clone runs `make run` or `make test` and nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DURATION ?=
OUT ?= .interceptor/simulation
SEED ?=
# Two pytest processes, each with its own embedded broker: the integration tests mostly wait on the broker.
# A file's tests stay on one process. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadfile

.DEFAULT_GOAL := help
.PHONY: help setup run test unit integration lint bench simulate schemas clean

help: ## list every target
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,simulate,bench]'
	touch $@

setup: $(INSTALLED) ## create .venv and install the project with its test tools

run: $(INSTALLED) ## the demo: embedded broker, worker, synthetic scam feed; DURATION=seconds to stop by itself
	$(BIN)/interceptor demo $(if $(DURATION),--duration $(DURATION))

test: lint ## lint, then the whole suite (unit and integration, against a real broker)
	$(BIN)/python -m pytest $(PARALLEL)

unit: $(INSTALLED) ## only the fast, broker-free tests
	$(BIN)/python -m pytest $(PARALLEL) tests/unit

integration: $(INSTALLED) ## only the tests against a real broker
	$(BIN)/python -m pytest $(PARALLEL) tests/integration

lint: $(INSTALLED) ## ruff (bugbear, bandit, timezone rules) and mypy on the pure packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy processors schemas

bench: $(INSTALLED) ## throughput and latency figures on the embedded broker
	$(BIN)/interceptor bench

simulate: $(INSTALLED) ## a seeded scam world through broker and worker, scored: OUT=dir (default .interceptor/simulation), SEED=n
	$(BIN)/interceptor simulate --out $(OUT) $(if $(SEED),--seed $(SEED))

schemas: $(INSTALLED) ## regenerate schemas/json from the topic catalogue
	$(BIN)/interceptor schemas export schemas/json

clean: ## remove the virtualenv and local state
	rm -rf $(VENV) .interceptor .pytest_cache .mypy_cache .ruff_cache .hypothesis
