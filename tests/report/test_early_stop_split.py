"""Val reports, it does not choose: with a holdout the early-stop epoch reads its loss."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.report import REQUIRED_COLUMNS
from pipeline.report.result_row import ResultRow, best_epoch, early_stop_split
from pipeline.report.table import parquet_bytes, results_frame
from pipeline.tickets.controls import TICKET

# val loss is lowest at epoch 3, the holdout's at epoch 2
HISTORY = [
    {"epoch": 1, "top1": 0.50, "top5": 0.90, "val_loss": 1.30, "holdout_top1": 0.48,
     "holdout_loss": 1.40, "seconds": 1.0},
    {"epoch": 2, "top1": 0.60, "top5": 0.95, "val_loss": 1.10, "holdout_top1": 0.62,
     "holdout_loss": 1.00, "seconds": 1.0},
    {"epoch": 3, "top1": 0.65, "top5": 0.96, "val_loss": 0.90, "holdout_top1": 0.58,
     "holdout_loss": 1.20, "seconds": 1.0},
]
WITHOUT = [{k: v for k, v in h.items() if not k.startswith("holdout_")} for h in HISTORY]
SPARSITY = {"weights_remaining_prunable": 0.5, "weights_remaining_overall": 0.6}


def test_best_epoch_follows_the_holdout_loss_not_val():
    assert (best_epoch(HISTORY), early_stop_split(HISTORY)) == (2, "holdout")
    # without a holdout (data.holdout_per_class: 0) val's loss chooses, as before
    assert (best_epoch(WITHOUT), early_stop_split(WITHOUT)) == (3, "val")
    # epochs numbered as in the dense run (a cell rewound to k = 4)
    assert best_epoch([dict(h, epoch=h["epoch"] + 4) for h in HISTORY]) == 6
    # a model whose holdout losses are all NaN has no early stop: val never stands in
    diverged = [dict(h, holdout_loss=float("nan")) for h in HISTORY]
    assert (best_epoch(diverged), early_stop_split(diverged)) == (None, "holdout")
    assert early_stop_split([]) is None and best_epoch([]) is None


def test_rows_say_which_split_chose_and_carry_the_holdout():
    dense = ResultRow.dense(7, HISTORY)
    ok = ResultRow.ok("L1-k0-none", 1, 0, TICKET, 7, SPARSITY, HISTORY, 1.0)
    for row in (dense, ok):
        assert (row.best_epoch, row.early_stop_split) == (2, "holdout")
        assert (row.holdout_top1, row.holdout_loss) == (0.58, 1.20)  # the last epoch's
        assert (row.top1, row.val_loss) == (0.65, 0.90)  # val still reports
    plain = ResultRow.ok("L1-k0-none", 1, 0, TICKET, 7, SPARSITY, WITHOUT, 1.0)
    assert (plain.best_epoch, plain.early_stop_split, plain.holdout_loss) == (3, "val", None)
    failed = ResultRow.failed("L1-k0-none", 1, 0, TICKET, 7, "boom")
    assert failed.early_stop_split is None and failed.holdout_top1 is None
    # appended after the older columns, typed in Parquet even when all missing
    assert REQUIRED_COLUMNS.index("holdout_top1") > REQUIRED_COLUMNS.index("control_seed")
    table = pq.read_table(io.BytesIO(parquet_bytes(results_frame([plain, failed]))))
    types = {f.name: f.type for f in table.schema}
    assert types["holdout_top1"] == types["holdout_loss"] == pa.float64()
    assert types["early_stop_split"] == pa.string()


def test_the_early_stop_figure_names_its_split():
    from pipeline.report.figures import early_stop_split_of

    assert early_stop_split_of(pd.DataFrame({"early_stop_split": ["holdout", None]})) == "holdout"
    assert early_stop_split_of(pd.DataFrame({"early_stop_split": ["val"]})) == "val"
    assert early_stop_split_of(pd.DataFrame({"best_epoch": [1]})) == "val"  # older tables
