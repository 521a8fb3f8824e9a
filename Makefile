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

# The Spark 3.5 leg: a Spark 3.5 install of its own (pyspark's wheel, with its JVM jars and
# scripts) that runs first, through SPARK_HOME and PYTHONPATH, ahead of the venv's pyspark
# 4.0, the way a Dataproc or EMR node's Spark does.
SPARK35 := .spark35
SPARK35_VERSION := 3.5.5
SPARK35_PY4J := 0.10.9.7
SPARK35_STAMP := $(SPARK35)/.installed-$(SPARK35_VERSION)
SPARK35_TESTS := tests/deploy/test_spark_session.py tests/data/test_ingest.py \
	tests/experiment/test_prune_job.py tests/cluster/test_cluster.py::test_ingest_on_the_cluster \
	tests/cluster/test_cluster.py::test_prune_job_on_the_cluster \
	tests/cluster/test_cluster.py::test_executors_import_the_shipped_package

.PHONY: setup test test-fast test-spark35 bench-gpu test-cluster lint demo reproduce transfer-halves bench cluster-up cluster-down cluster-status clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -q -e '.[dev,cloud,deploy]'
	touch $(STAMP)

# Lint first, so a lint error fails in seconds; the slowest tests are listed at the end.
test: setup $(SPARK35_STAMP)
	$(VENV)/bin/ruff check pipeline jobs tests benchmarks
	$(PY) -m pytest --durations=15
	$(MAKE) --no-print-directory test-spark35

$(SPARK35_STAMP): $(STAMP)
	rm -rf $(SPARK35)
	$(PY) -m pip install -q --no-deps --target $(SPARK35) pyspark==$(SPARK35_VERSION) py4j==$(SPARK35_PY4J)
	touch $@

# Ingest, the main job and the loopback cluster under Spark 3.5 (about 3 minutes).
test-spark35: setup $(SPARK35_STAMP)
	SPARK_HOME=$(abspath $(SPARK35))/pyspark PYTHONPATH=$(abspath $(SPARK35)) \
	LOTTERY_EXPECT_SPARK=$(SPARK35_VERSION) $(PY) -m pytest $(SPARK35_TESTS)

# Everything but the loopback-cluster and fault tests (minutes instead of a quarter hour).
test-fast: setup
	$(PY) -m pytest -m 'not cluster'

test-cluster: setup
	$(PY) -m pytest -m cluster

lint: setup
	$(VENV)/bin/ruff check pipeline jobs tests benchmarks

demo: setup
	bash jobs/demo.sh $(DEMO_DIR)

# Frankle & Carbin's LeNet-300-100 and Conv-4 studies on the digits (docs/reproducing-the-lth.md).
reproduce: setup
	bash jobs/reproduce.sh $(REPRODUCE_DIR)

# Tickets of digits 0-4 transferred to digits 5-9, and ensembles (docs/transfer-and-ensembles.md).
TRANSFER_DIR ?= transfer-output
transfer-halves: setup
	bash jobs/transfer_halves.sh $(TRANSFER_DIR)

# make bench ARGS='--only reader_vs_decode' reruns a subset and keeps the other results
# (benchmarks/harness/run_all.py; one folder per benchmark under benchmarks/).
bench: setup
	$(PY) -m benchmarks.harness.run_all $(ARGS)

# The GPU figures (benchmarks/gpu/bench.py): one line and exit 0 where there is no GPU.
bench-gpu: setup
	$(PY) -m benchmarks.gpu.bench --json benchmarks/results-gpu.json

cluster-up: setup
	$(PY) jobs/cluster.py up --state-dir $(CLUSTER_DIR)

cluster-status: setup
	$(PY) jobs/cluster.py status --state-dir $(CLUSTER_DIR)

cluster-down: setup
	$(PY) jobs/cluster.py down --state-dir $(CLUSTER_DIR)

clean:
	rm -rf $(DEMO_DIR) $(REPRODUCE_DIR) $(TRANSFER_DIR) $(SPARK35) .pytest_cache
