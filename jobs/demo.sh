#!/usr/bin/env bash
# The demo, end to end in Spark local mode: digits sample -> ingest -> prune job -> report.
#   bash jobs/demo.sh [OUT_DIR] [--set key=value ...]   (make demo runs this after setting
#   up .venv/; make demo ARGS='--set tracking.mlflow_uri=sqlite:///...' passes settings on)
# Each step is skipped when its output is already complete, like the job's own stages.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-output}
shift || true
source jobs/local_env.sh
mkdir -p "$OUT"

echo "== 1/3 sample: scikit-learn digits as JPEGs in the ImageNet class-folder layout"
if [ ! -f "$OUT/sample/.complete" ]; then
  rm -rf "$OUT/sample"
  "$PY" jobs/make_sample_imagenet.py "$OUT/sample" --train-per-class 140 --val-per-class 30 \
    --size 64
  touch "$OUT/sample/.complete"
fi

echo "== 2/3 ingest: Spark decodes, repairs and resizes into Petastorm Parquet"
if [ ! -f "$OUT/dataset/_COMPLETE" ]; then
  "$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/ingest_imagenet.py --source "$OUT/sample" \
    --output "$OUT/dataset" --image-size 32 --overwrite
fi
"$PY" - "$OUT/dataset" <<'PYEOF'
import json, sys
info = json.load(open(f"{sys.argv[1]}/dataset.json"))
print(f"dataset {sys.argv[1]}: {info['rows']} rows, {info['rejected']} rejected, "
      f"{info['num_classes']} classes at {info['image_size']}x{info['image_size']}")
PYEOF

echo "== 3/3 prune: Elephas dense training, IMP grid with controls, report"
"$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/prune_imagenet.py --config conf/local.yaml \
  --set "data.url=$OUT/dataset" --set "run.output=$OUT/runs" "$@"
