# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
# Also: `make docs` (the Sphinx site), `make test-wheel` (the built wheel in a brand-new venv, newest
# Airflow, no constraints), `make test-lowest` (the declared lower bounds on the floor Airflow).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed-stamp
# After dag.test() a Python process ignores SIGTERM: every run is bounded with timeout -k.
TEST_TIMEOUT ?= 2400
DEMO_TIMEOUT ?= 600

.PHONY: all install compat-install demo test test-compat test-wheel test-lowest docs screenshots lint bench \
	bench-smoke check-triggerer mutation mutation-sample clean

all: test

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "uv==0.13.9"

# Test, docs, lint and bench tools are dependency groups (PEP 735): installed here, never published.
# Compiled at install: where PYTHONDONTWRITEBYTECODE is set, every test process (and every mutant of
# `make mutation`) would otherwise compile Airflow from source again on import (2 s of each start).
$(STAMP): pyproject.toml constraints.txt | $(UV)
	$(UV) venv -q -p $(PYTHON) --allow-existing $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q --compile-bytecode -c constraints.txt -e . --group dev
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
	VIRTUAL_ENV=$(COMPAT_VENV) $(UV) pip install -q --compile-bytecode -c constraints-compat.txt -e . \
		"apache-airflow==$(COMPAT_AIRFLOW)" pytest pytest-timeout hypothesis huaweicloudsdkcore \
		apache-airflow-providers-sqlite apache-airflow-providers-postgres
	@touch $@

# The demo's own venv: the package with its SQLite extra and nothing else (no test or docs tools).
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-stamp

$(DEMO_STAMP): pyproject.toml constraints.txt | $(UV)
	$(UV) venv -q -p $(PYTHON) --allow-existing $(DEMO_VENV)
	VIRTUAL_ENV=$(DEMO_VENV) $(UV) pip install -q -c constraints.txt -e ".[sqlite]"
	@echo "make demo: $$(VIRTUAL_ENV=$(DEMO_VENV) $(UV) pip list -q --format freeze | wc -l) packages in $(DEMO_VENV)"
	@touch $@

demo: $(DEMO_STAMP)
	timeout -k 10 $(DEMO_TIMEOUT) $(DEMO_VENV)/bin/python scripts/demo.py

# The docs site: warnings (broken cross-references included, -n) are errors. tests/docs runs it too.
DOCS_BUILD ?= docs/_build/html
docs: install
	$(BIN)/sphinx-build -q -W --keep-going -n -b html docs $(DOCS_BUILD)
	@echo "docs: $(DOCS_BUILD)/index.html"

# Re-take the screenshots the docs show (docs/img/*.png): the real-browser tests save them there (the
# connection form's, tests/ui; the ImageSearch page's, tests/plugin/test_browser.py).
screenshots: install
	bash scripts/ensure-chromium.sh
	IMAGESEARCH_SCREENSHOTS=docs/img IMAGESEARCH_DOCS_SCREENSHOTS=1 timeout -k 15 1200 $(BIN)/python -m pytest \
		-q -p no:cacheprovider tests/ui tests/plugin/test_browser.py

test: install
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-redis.sh
	bash scripts/ensure-moto.sh
	PY=$(BIN)/python TEST_TIMEOUT=$(TEST_TIMEOUT) bash scripts/run-tests.sh

# conftest.py stops the session unless the running Airflow is IMAGESEARCH_EXPECT_AIRFLOW.
compat-install: $(COMPAT_STAMP)

# The wheel as a user gets it: built, installed into a brand-new venv with the newest Airflow and no
# constraints file, discovered by Airflow, every module imported, the archive example DAG run against the
# emulator from that venv (scripts/test_wheel.py). Nothing of this checkout is on its sys.path.
test-wheel: | $(UV)
	UV=$(abspath $(UV)) PYTHON=$(PYTHON) timeout -k 15 1200 bash scripts/test-wheel.sh

# The declared lower bounds (uv --resolution lowest-direct) on the oldest Airflow supported, in their own
# venv; then the hook and operator tests. A bound that fails there is raised in pyproject.toml.
LOWEST_VENV := .venv-lowest
LOWEST_STAMP := $(LOWEST_VENV)/.installed-stamp
# The archive (pandas, common-sql, SQLite) through tests that need no 3.3-only Airflow module; the
# [parquet] extra's floor through tests/test_lowest.py's Parquet manifest.
LOWEST_TESTS := tests/hooks tests/operators tests/unit/test_archive_values.py \
	tests/dags/test_archive_dag.py::test_failure_half_way_writes_no_row tests/test_lowest.py
# Test tools pinned exactly: lowest-direct would otherwise pick their oldest releases too.
LOWEST_TOOLS := pytest==9.2.0 pytest-timeout==2.4.0 hypothesis==6.170.17 huaweicloudsdkcore==3.1.219

# A new venv each time: in an existing one, uv keeps an installed release that satisfies a bound, so a
# newer release left from an earlier resolution would stand in for the floor.
$(LOWEST_STAMP): pyproject.toml | $(UV)
	rm -rf $(LOWEST_VENV)
	$(UV) venv -q -p $(PYTHON) $(LOWEST_VENV)
	VIRTUAL_ENV=$(LOWEST_VENV) $(UV) pip install -q --resolution lowest-direct -e ".[sqlite,parquet]" \
		"apache-airflow==$(COMPAT_AIRFLOW)" $(LOWEST_TOOLS)
	@touch $@

test-lowest: $(LOWEST_STAMP)
	VIRTUAL_ENV=$(LOWEST_VENV) $(UV) pip list -q --format freeze \
		| grep -iE '^(apache-airflow|apache-airflow-providers-(common-sql|sqlite)|requests|httpx|pandas|numpy|pyarrow|tenacity)=='
	IMAGESEARCH_EXPECT_AIRFLOW=$(COMPAT_AIRFLOW) IMAGESEARCH_EXPECT_LOWEST=1 timeout -k 15 $(TEST_TIMEOUT) \
		$(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_TESTS) -k "not postgres"

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
	bash scripts/ensure-moto.sh
	bash scripts/ensure-postgres.sh
	timeout -k 15 $(MUTATION_TIMEOUT) $(MUTATION_NICE) $(BIN)/python scripts/mutation.py run --max-children 2 $(MUTATION_SCOPE)

mutation-sample: install
	bash scripts/ensure-postgres.sh
	timeout -k 15 1200 $(BIN)/python scripts/mutation.py sample

clean:
	rm -rf mutants $(VENV) $(COMPAT_VENV) $(DEMO_VENV) $(LOWEST_VENV) $(TOOLS) build dist *.egg-info docs/_build \
		.pytest_cache .mypy_cache .ruff_cache
