# One entry point for people and CI. Every target bootstraps the virtual environment
# it needs, so a fresh clone needs nothing done by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: all test demo bench soak lint clean system-packages chart-files

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,evidently,broker,confluent]'
	touch $(STAMP)

system-packages:
	bash .ci/system-packages

test: $(STAMP) system-packages
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) -m "not soak"

demo: $(STAMP)
	$(BIN)/model-health demo

bench: $(STAMP)
	$(BIN)/python benchmarks/detectors_vs_evidently.py

soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak

CHART := deploy/helm/model-health-exporter

# The Helm chart's generated files: alert rules and dashboards exactly as the commands write
# them (tests/deploy/test_chart.py fails while they are stale).
chart-files: $(STAMP)
	rm -rf $(CHART)/files/alerts $(CHART)/files/dashboards
	$(BIN)/model-health alerts --out $(CHART)/files/alerts
	$(BIN)/model-health dashboards --out $(CHART)/files/dashboards

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
