#!/usr/bin/env bash
# Sourced by docker/dataproc-init.sh and docker/emr-bootstrap.sh from the unpacked source.
# node_pins PIN...: the pins to install on this node, one per line; on a node whose
# nvidia-smi lists a GPU, tensorflow==V becomes tensorflow[and-cuda]==V (the same release,
# with the CUDA and cuDNN wheels it was built against).
set -euo pipefail

has_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '
}

node_pins() {
  local pin gpu=0
  if has_gpu; then
    gpu=1
  fi
  for pin in "$@"; do
    if [[ "${gpu}" == 1 && "${pin}" == tensorflow==* ]]; then
      echo "tensorflow[and-cuda]==${pin#tensorflow==}"
    else
      echo "${pin}"
    fi
  done
}
