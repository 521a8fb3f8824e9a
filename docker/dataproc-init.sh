#!/usr/bin/env bash
# Dataproc initialization action: install lottery-spark on every node of a cluster.
#
#   gcloud dataproc clusters create CLUSTER ... \
#     --initialization-actions=gs://BUCKET/lottery-spark/dataproc-init.sh \
#     --metadata=lottery-spark-source=gs://BUCKET/lottery-spark/lottery-spark.tar.gz
#
# Metadata:
#   lottery-spark-source  (required) gs:// URL of a source tarball of this repository
#                         (git archive --format=tar.gz -o dist/lottery-spark.tar.gz HEAD)
#   lottery-spark-python  (optional) Python 3.11 interpreter the venv is built from
#
# Result on every node:
#   /opt/lottery-spark        the repository (jobs/, conf/, pipeline/), as in the Docker image
#   /opt/lottery-spark/venv   Python 3.11 venv with the pinned dependencies and the project
#   /opt/lottery-spark/bin/spark-gpu-discovery.sh
#   PYSPARK_PYTHON / PYSPARK_DRIVER_PYTHON in /etc/spark/conf/spark-env.sh point at the venv
# With GPUs, run Dataproc's gpu/install_gpu_driver.sh init action before this one.
set -euo pipefail

readonly APP_HOME=/opt/lottery-spark
readonly VENV="${APP_HOME}/venv"
readonly SPARK_ENV=/etc/spark/conf/spark-env.sh

# Keep in step with pyproject.toml and docker/Dockerfile (tests/deploy/test_deploy.py checks).
readonly PINS=(
  elephas==7.3.0
  tensorflow==2.19.1
  pyspark==4.0.0
  petastorm==0.13.1
  pyarrow==14.0.2
  numpy==1.26.4
  h5py==3.11.0
  opencv-python-headless==4.10.0.84
  pandas==3.0.6
  pillow==13.0.0
  matplotlib==3.11.2
  scikit-learn==1.9.1
  pyyaml==6.0.3
  s3fs==2026.9.0
  gcsfs==2026.10.1
  scipy==1.17.1
  statsmodels==0.15.0
)

metadata() {
  /usr/share/google/get_metadata_value "attributes/$1" 2>/dev/null || true
}

is_python311() {
  [[ -x "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
}

find_python() {
  local candidate
  for candidate in "$(metadata lottery-spark-python)" \
    /opt/conda/default/bin/python3.11 /opt/conda/miniconda3/bin/python3.11 \
    "$(command -v python3.11 || true)"; do
    if [[ -n "${candidate}" ]] && is_python311 "${candidate}"; then
      echo "${candidate}"
      return 0
    fi
  done
  echo "dataproc-init: no Python 3.11 found; use image 2.2 or later," \
    "or set metadata lottery-spark-python" >&2
  return 1
}

main() {
  local source python archive pins
  source="$(metadata lottery-spark-source)"
  if [[ "${source}" != gs://* ]]; then
    echo "dataproc-init: metadata lottery-spark-source must be a gs:// URL," \
      "got '${source}'" >&2
    exit 1
  fi
  python="$(find_python)"

  archive="$(mktemp --suffix=.tar.gz)"
  gsutil -q cp "${source}" "${archive}"
  mkdir -p "${APP_HOME}/bin"
  tar -xzf "${archive}" -C "${APP_HOME}"
  rm -f "${archive}"

  "${python}" -m venv --clear "${VENV}"
  # shellcheck source=node-pins.sh
  source "${APP_HOME}/docker/node-pins.sh"
  mapfile -t pins < <(node_pins "${PINS[@]}")
  "${VENV}/bin/pip" install --no-cache-dir "${pins[@]}"
  "${VENV}/bin/pip" install --no-cache-dir --no-deps "${APP_HOME}"
  "${VENV}/bin/pip" check

  install -m 0755 "${APP_HOME}/docker/spark-gpu-discovery.sh" "${APP_HOME}/bin/"
  chmod -R a+rX "${APP_HOME}"

  # Jobs submitted without spark.pyspark.python still get the venv.
  if [[ -f "${SPARK_ENV}" ]] && ! grep -q "${VENV}/bin/python" "${SPARK_ENV}"; then
    {
      echo "export PYSPARK_PYTHON=${VENV}/bin/python"
      echo "export PYSPARK_DRIVER_PYTHON=${VENV}/bin/python"
    } >>"${SPARK_ENV}"
  fi
}

main "$@"
