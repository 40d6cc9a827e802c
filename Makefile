# Two entry points, as the README says: `make run` and `make test`. Both set themselves up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup run test lint typecheck unit bench broker

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'  # bench: matplotlib, for the benchmark report's plots (tested too)
	touch $@

setup: $(BIN)/.installed

# Start the local RabbitMQ (with the plugins the topology needs) unless AMQP_URL points elsewhere.
broker:
	@bash ops/scripts/ensure-broker.sh

run: setup broker
	$(BIN)/sessions run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

test: setup broker lint typecheck
	$(BIN)/pytest

bench: setup broker
	$(BIN)/sessions bench
