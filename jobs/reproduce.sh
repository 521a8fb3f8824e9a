#!/usr/bin/env bash
# The lottery ticket hypothesis reproduced on small networks, end to end in Spark local mode:
# digits sample -> ingest -> LeNet-300-100 and Conv-4 studies -> reports and LTH checks.
#   bash jobs/reproduce.sh [OUT_DIR]       (make reproduce runs this after setting up .venv/)
# Each step is skipped when its output is already complete; an interrupted study resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-reproduce-output}
source jobs/local_env.sh
mkdir -p "$OUT"
START=$SECONDS

echo "== 1/4 sample: all 1,797 digits, gray, 140 per digit to train and the rest to val"
gray_digits_sample "$OUT"

echo "== 2/4 ingest: Spark writes the Petastorm dataset at 16x16"
if [ ! -f "$OUT/dataset/_COMPLETE" ]; then
  "$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/ingest_imagenet.py --source "$OUT/sample" \
    --output "$OUT/dataset" --image-size 16 --overwrite
fi

RUNS=()
for study in lenet_digits conv4_digits; do
  echo "== ${study}: dense training, IMP grid with controls and level-0 references, 5 replicates"
  "$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/prune_imagenet.py \
    --config "conf/${study}.yaml" --set "data.url=$OUT/dataset" --set "run.output=$OUT/runs" \
    | tee "$OUT/${study}.log"
  RUNS+=("$(sed -n 's/^run directory: //p' "$OUT/${study}.log" | tail -1)")
done

echo "== LTH checks (Frankle & Carbin 2019)"
"$PY" jobs/lth_check.py "${RUNS[@]}" --output "$OUT/lth_check.md"
echo
echo "reproduced in $(( (SECONDS - START) / 60 )) min $(( (SECONDS - START) % 60 )) s"
for run in "${RUNS[@]}"; do echo "report: $run/report.md"; done
echo "checks: $OUT/lth_check.md"
