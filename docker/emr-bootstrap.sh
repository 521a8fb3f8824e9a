#!/usr/bin/env bash
# EMR bootstrap action: install lottery-spark on every node of a cluster (EMR 7.x, AL2023).
#
#   aws emr create-cluster ... --bootstrap-actions \
#     Path=s3://BUCKET/lottery-spark/emr-bootstrap.sh,Args=[s3://BUCKET/lottery-spark/lottery-spark.tar.gz]
#
# Argument: s3:// URL of a source tarball of this repository
#           (git archive --format=tar.gz -o dist/lottery-spark.tar.gz HEAD)
#
# Result on every node:
#   /opt/lottery-spark        the repository (jobs/, conf/, pipeline/), as in the Docker image
#   /opt/lottery-spark/venv   Python 3.11 venv with the pinned dependencies and the project
#   /opt/lottery-spark/bin/spark-gpu-discovery.sh
# Bootstrap actions run before EMR installs Spark, so PYSPARK_PYTHON is set by the
# spark-env classification at cluster creation and by spark.pyspark.python (conf/emr.yaml).
set -euo pipefail

readonly APP_HOME=/opt/lottery-spark
readonly VENV="${APP_HOME}/venv"

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

main() {
  local source="${1:-}" archive pins
  if [[ "${source}" != s3://* ]]; then
    echo "emr-bootstrap: usage: emr-bootstrap.sh s3://BUCKET/PATH/lottery-spark.tar.gz" >&2
    exit 1
  fi
  # Bootstrap actions run as the hadoop user; the install goes under /opt.
  if [[ "${EUID}" -ne 0 ]]; then
    exec sudo bash "$0" "$@"
  fi

  if ! command -v python3.11 >/dev/null 2>&1; then
    dnf install -y python3.11 python3.11-pip
  fi

  archive="$(mktemp --suffix=.tar.gz)"
  aws s3 cp --only-show-errors "${source}" "${archive}"
  mkdir -p "${APP_HOME}/bin"
  tar -xzf "${archive}" -C "${APP_HOME}"
  rm -f "${archive}"

  python3.11 -m venv --clear "${VENV}"
  # shellcheck source=node-pins.sh
  source "${APP_HOME}/docker/node-pins.sh"
  mapfile -t pins < <(node_pins "${PINS[@]}")
  "${VENV}/bin/pip" install --no-cache-dir "${pins[@]}"
  "${VENV}/bin/pip" install --no-cache-dir --no-deps "${APP_HOME}"
  "${VENV}/bin/pip" check

  install -m 0755 "${APP_HOME}/docker/spark-gpu-discovery.sh" "${APP_HOME}/bin/"
  chmod -R a+rX "${APP_HOME}"
}

main "$@"
