#!/usr/bin/env bash
# GPU discovery script for spark.executor.resource.gpu.discoveryScript.
# Prints the resource JSON Spark expects, one address per GPU nvidia-smi lists:
#   {"name": "gpu", "addresses": ["0","1"]}
# Without nvidia-smi (a CPU node) the address list is empty. When nvidia-smi is present but
# fails (driver not loaded), the script fails too so that Spark reports the error.
set -euo pipefail

addresses=""
if command -v nvidia-smi >/dev/null 2>&1; then
  indices="$(nvidia-smi --query-gpu=index --format=csv,noheader)"
  while IFS= read -r index; do
    index="${index//[[:space:]]/}"
    [[ -n "${index}" ]] || continue
    addresses+="${addresses:+,}\"${index}\""
  done <<<"${indices}"
fi
printf '{"name": "gpu", "addresses": [%s]}\n' "${addresses}"
