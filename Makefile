# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed-stamp
# After dag.test() a Python process ignores SIGTERM: every run is bounded with timeout -k.
TEST_TIMEOUT ?= 1500
DEMO_TIMEOUT ?= 600

.PHONY: all install demo test lint bench bench-smoke clean

all: test

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "uv==0.13.9"

$(STAMP): pyproject.toml constraints.txt | $(UV)
	$(UV) venv -q -p $(PYTHON) --allow-existing $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q -c constraints.txt -e ".[test,bench]"
	@touch $@

install: $(STAMP)

demo: install
	timeout -k 10 $(DEMO_TIMEOUT) $(BIN)/python scripts/demo.py

test: install
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	timeout -k 15 $(TEST_TIMEOUT) $(BIN)/python -m pytest -q -p no:cacheprovider tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	bash scripts/ensure-postgres.sh
	timeout -k 15 3000 $(BIN)/python -m benchmarks

bench-smoke: install
	bash scripts/ensure-postgres.sh
	timeout -k 15 600 $(BIN)/python -m benchmarks --smoke

clean:
	rm -rf $(VENV) $(TOOLS) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
