# Sourced by the local end-to-end scripts (demo.sh, reproduce.sh) from the project root:
# the virtual environment's Python on driver and executors, quiet TensorFlow and log4j.
PY=${PY:-.venv/bin/python}
SUBMIT=${SUBMIT:-.venv/bin/spark-submit}
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$PWD/$PY}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$PWD/$PY}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
QUIET=(--driver-java-options "-Dlog4j2.configurationFile=conf/log4j2.properties")
