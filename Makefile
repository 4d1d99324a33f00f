# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed-stamp
# After dag.test() a Python process ignores SIGTERM: every run is bounded with timeout -k.
TEST_TIMEOUT ?= 2400
DEMO_TIMEOUT ?= 600

.PHONY: all install compat-install demo test test-compat lint bench bench-smoke check-triggerer mutation mutation-sample clean

all: test

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "uv==0.13.9"

$(STAMP): pyproject.toml constraints.txt | $(UV)
	$(UV) venv -q -p $(PYTHON) --allow-existing $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q -c constraints.txt -e ".[test,bench]"
	@touch $@

install: $(STAMP)

# The oldest Airflow the provider supports, in its own venv (never the main .venv), pinned by
# constraints-compat.txt: a freeze of an environment that passed, since the official constraints
# files cannot be fetched here. The provider is installed with its own dependencies, so a floor in
# pyproject.toml that excludes this release fails the install.
COMPAT_AIRFLOW := 3.1.8
COMPAT_VENV := .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp
COMPAT_TESTS := tests/hooks tests/operators tests/sensors tests/triggers tests/test_compat.py tests/plugin

$(COMPAT_STAMP): pyproject.toml constraints-compat.txt | $(UV)
	$(UV) venv -q -p $(PYTHON) --allow-existing $(COMPAT_VENV)
	VIRTUAL_ENV=$(COMPAT_VENV) $(UV) pip install -q -c constraints-compat.txt -e . \
		"apache-airflow==$(COMPAT_AIRFLOW)" pytest pytest-timeout hypothesis huaweicloudsdkcore \
		apache-airflow-providers-sqlite apache-airflow-providers-postgres
	@touch $@

demo: install
	timeout -k 10 $(DEMO_TIMEOUT) $(BIN)/python scripts/demo.py

test: install
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-redis.sh
	bash scripts/ensure-moto.sh
	timeout -k 15 $(TEST_TIMEOUT) $(BIN)/python -m pytest -q -p no:cacheprovider tests

# conftest.py stops the session unless the running Airflow is IMAGESEARCH_EXPECT_AIRFLOW.
compat-install: $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(COMPAT_VENV)/bin/python -c "from importlib.metadata import version as v; print('test-compat on apache-airflow', v('apache-airflow'))"
	IMAGESEARCH_EXPECT_AIRFLOW=$(COMPAT_AIRFLOW) timeout -k 15 $(TEST_TIMEOUT) \
		$(COMPAT_VENV)/bin/python -m pytest -q -p no:cacheprovider $(COMPAT_TESTS)

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

# In real Airflow (airflow standalone): no "async thread was blocked" while ImageSearch triggers run.
check-triggerer: install
	timeout -k 15 1200 $(BIN)/python scripts/check_triggerer_blocking.py

# Mutation testing (docs/mutation-testing.rst): mutmut over the correctness-critical modules (setup.cfg's
# [mutmut]) with two workers, then reports/mutation/report.md; fails under a 90% kill ratio. The sample
# is CI's: the fixed mutants of tests/mutation/sample.txt, a few minutes, fails if one survives.
MUTATION_TIMEOUT ?= 10800
MUTATION_NICE ?= nice -n 15
# Optional: mutmut names or globs, e.g. MUTATION_SCOPE='airflow_provider_imagesearch.retry.*', to run and
# report only those mutants.
MUTATION_SCOPE ?=
mutation: install
	timeout -k 15 $(MUTATION_TIMEOUT) $(MUTATION_NICE) $(BIN)/python scripts/mutation.py run --max-children 2 $(MUTATION_SCOPE)

mutation-sample: install
	timeout -k 15 1200 $(BIN)/python scripts/mutation.py sample

clean:
	rm -rf mutants $(VENV) $(COMPAT_VENV) $(TOOLS) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
