# lottery-spark: every target sets itself up; the virtual environment lives in .venv/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output
REPRODUCE_DIR ?= reproduce-output
CLUSTER_DIR ?= .cluster
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: setup test test-fast test-cluster lint demo reproduce transfer-halves bench cluster-up cluster-down cluster-status clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -q -e '.[dev,cloud]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest

# Everything but the loopback-cluster and fault tests (minutes instead of a quarter hour).
test-fast: setup
	$(PY) -m pytest -m 'not cluster'

test-cluster: setup
	$(PY) -m pytest -m cluster

lint: setup
	$(VENV)/bin/ruff check pipeline jobs tests benchmarks

demo: setup
	bash jobs/demo.sh $(DEMO_DIR)

# Frankle & Carbin's LeNet-300-100 and Conv-4 studies on the digits (README "Reproducing the LTH").
reproduce: setup
	bash jobs/reproduce.sh $(REPRODUCE_DIR)

# Tickets of digits 0-4 transferred to digits 5-9, and ensembles (README "Transfer and ensembles").
TRANSFER_DIR ?= transfer-output
transfer-halves: setup
	bash jobs/transfer_halves.sh $(TRANSFER_DIR)

# make bench ARGS='--only reader_vs_decode' reruns a subset and keeps the other results
# (benchmarks/harness/run_all.py; one folder per benchmark under benchmarks/).
bench: setup
	$(PY) -m benchmarks.harness.run_all $(ARGS)

cluster-up: setup
	$(PY) jobs/cluster.py up --state-dir $(CLUSTER_DIR)

cluster-status: setup
	$(PY) jobs/cluster.py status --state-dir $(CLUSTER_DIR)

cluster-down: setup
	$(PY) jobs/cluster.py down --state-dir $(CLUSTER_DIR)

clean:
	rm -rf $(DEMO_DIR) $(REPRODUCE_DIR) $(TRANSFER_DIR) .pytest_cache
