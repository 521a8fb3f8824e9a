#!/usr/bin/env bash
# Ticket transfer between the two halves of the digits (Morcos et al. 2019's "two halves"
# experiment), end to end in Spark local mode (make transfer-halves runs this):
# digits 0-4 and 5-9 ingested apart -> LeNet-300-100 tickets on each half -> the 0-4 tickets
# transferred to 5-9 with controls, baselines and the 5-9 tickets -> prediction ensembles
# and merged tickets of the 0-4 run.
#   bash jobs/transfer_halves.sh [OUT_DIR]
# Each step is skipped when its output is already complete; an interrupted run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-transfer-output}
source jobs/local_env.sh
mkdir -p "$OUT"
START=$SECONDS
STUDY=(--config conf/lenet_digits.yaml --set run.replicates=3 --set prune.levels=10
       --set run.name=lenet-halves --set "run.output=$OUT/runs")

echo "== 1/5 sample: all 1,797 digits, gray, 140 per digit to train and the rest to val"
gray_digits_sample "$OUT"

echo "== 2/5 ingest: digits 0-4 and digits 5-9 as two data sets"
FIRST=n00000000,n00000001,n00000002,n00000003,n00000004
SECOND=n00000005,n00000006,n00000007,n00000008,n00000009
for half in first second; do
  classes=$FIRST; [ "$half" = second ] && classes=$SECOND
  if [ ! -f "$OUT/$half/_COMPLETE" ]; then
    "$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/ingest_imagenet.py --source "$OUT/sample" \
      --output "$OUT/$half" --image-size 16 --classes "$classes" --overwrite
  fi
done

run_dir() {  # the run directory a step printed
  sed -n 's/^run directory: //p' "$OUT/$1.log" | tail -1
}
for half in first second; do
  echo "== 3/5 tickets on the $half half: dense, IMP grid with controls, 3 replicates"
  "$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/prune_imagenet.py "${STUDY[@]}" \
    --set "data.url=$OUT/$half" | tee "$OUT/$half.log"
done

echo "== 4/5 transfer: the first half's tickets trained on the second half"
"$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/transfer_tickets.py --from "$(run_dir first)" \
  --data "$OUT/second" --target-run "$(run_dir second)" | tee "$OUT/transfer.log"

echo "== 5/5 ensembles of the first half's tickets"
"$SUBMIT" --master "local[2]" "${QUIET[@]}" jobs/ensemble_tickets.py "$(run_dir first)" \
  | tee "$OUT/ensembles.log"
echo
echo "done in $(( (SECONDS - START) / 60 )) min $(( (SECONDS - START) % 60 )) s"
echo "transfer report: $(run_dir transfer)/report.md"
