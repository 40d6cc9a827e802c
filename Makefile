# Two entry points, as the README says: `make run` and `make test`. Both set themselves up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup run test lint typecheck unit bench broker wire-server

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'  # bench: matplotlib, for the benchmark report's plots (tested too)
	# The checkout's own folders beside the package (benchmarks/ for `sessions bench`, tests/), importable here only.
	echo "$(CURDIR)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/chat-sessions-checkout.pth"
	touch $@

setup: $(BIN)/.installed

# The MongoDB wire server the tests run the MongoDB store against (tests/support/wire_server.py).
# A tool venv of its own: secantusdb is GPL-2.0 and test-time only, never a project dependency.
SECANTUS_VENV := .tools/secantus
$(SECANTUS_VENV)/.installed:
	$(PYTHON) -m venv $(SECANTUS_VENV)
	$(SECANTUS_VENV)/bin/pip install --quiet 'secantusdb==0.7.0b3'
	touch $@

wire-server: $(SECANTUS_VENV)/.installed

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

# pytest starts a fresh wire server for the run (unless MONGODB_URL names a MongoDB) and stops it.
test: setup wire-server broker lint typecheck
	$(BIN)/pytest

bench: setup broker
	$(BIN)/sessions bench
