# Sourced by the local end-to-end scripts (demo.sh, reproduce.sh, ...) from the project root:
# the virtual environment's Python on driver and executors, quiet TensorFlow and log4j.
PY=${PY:-.venv/bin/python}
SUBMIT=${SUBMIT:-.venv/bin/spark-submit}
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$PWD/$PY}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$PWD/$PY}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
QUIET=(--driver-java-options "-Dlog4j2.configurationFile=conf/log4j2.properties")

# All 1,797 digits, gray, 140 per digit to train and the rest to val (the LTH studies' data),
# written to $1/sample unless complete there.
gray_digits_sample() {
  if [ ! -f "$1/sample/.complete" ]; then
    rm -rf "$1/sample"
    "$PY" jobs/make_sample_imagenet.py "$1/sample" --train-per-class 140 --val-per-class rest \
      --size 16 --style gray --shuffle
    touch "$1/sample/.complete"
  fi
}
