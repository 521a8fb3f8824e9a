"""ResultRow: the one definition of a results row, its columns and their Parquet types."""

from __future__ import annotations

import dataclasses
import io

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.report import REQUIRED_COLUMNS
from pipeline.report.result_row import ResultRow, best_epoch
from pipeline.report.table import control_rank, parquet_bytes, results_frame
from pipeline.tickets.controls import TICKET, control_marker, list_controls

HISTORY = [{"epoch": 1, "top1": 0.5, "top5": 0.9, "val_loss": 1.2, "seconds": 2.0},
           {"epoch": 2, "top1": 0.6, "top5": 0.95, "val_loss": 1.1, "seconds": 3.0},
           {"epoch": 3, "top1": 0.55, "top5": 0.94, "val_loss": 1.3, "seconds": 2.5}]
SPARSITY = {"weights_remaining_prunable": 0.5, "weights_remaining_overall": 0.6}


def test_columns_derive_from_the_fields():
    assert REQUIRED_COLUMNS == tuple(f.name for f in dataclasses.fields(ResultRow))
    assert REQUIRED_COLUMNS[:4] == ("level", "rewind_epoch", "control", "seed")


def test_constructors_fill_every_column():
    dense = ResultRow.dense(7, HISTORY)
    assert (dense.level, dense.control, dense.top1, dense.best_epoch) == (0, TICKET, 0.55, 2)
    assert dense.train_seconds == 7.5 and dense.epochs == 3
    ok = ResultRow.ok("L1-k0-reinit", 1, 0, "reinit", 11, SPARSITY, HISTORY, 9.87654)
    assert ok.status == "ok" and ok.weights_remaining_overall == 0.6 and ok.train_seconds == 9.877
    failed = ResultRow.failed("L1-k0-none", 1, 0, TICKET, 7, "boom")
    assert failed.status == "failed" and failed.top1 is None and failed.error == "boom"
    assert best_epoch([{"val_loss": float("nan")}]) is None


def test_parquet_has_no_null_typed_column():
    # every row ok: "error" is all missing; only the dense row: "rewind_epoch" too
    rows = [ResultRow.dense(0, HISTORY),
            ResultRow.ok("L1-k0-none", 1, 0, TICKET, 0, SPARSITY, HISTORY, 1.0)]
    for subset in (rows, rows[:1]):
        table = pq.read_table(io.BytesIO(parquet_bytes(results_frame(subset))))
        types = {f.name: f.type for f in table.schema}
        assert pa.null() not in types.values(), types
        assert types["error"] == pa.string() and types["rewind_epoch"] == pa.int64()
        assert types["top1"] == pa.float64() and types["control"] == pa.string()


def test_control_registry_is_the_vocabulary():
    assert list_controls()[:2] == ["reinit", "random_mask"]  # registration order
    assert control_marker(TICKET) == "o"
    assert control_marker("reinit") != control_marker("random_mask")
    ranks = sorted(["random_mask", "zzz", TICKET, "reinit"], key=control_rank)
    assert ranks == [TICKET, "reinit", "random_mask", "zzz"]
