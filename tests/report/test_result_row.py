"""ResultRow: the one definition of a results row, its columns and their Parquet types."""

from __future__ import annotations

import dataclasses
import io

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.report import REQUIRED_COLUMNS
from pipeline.report.result_row import ResultRow, best_epoch, is_dense_run
from pipeline.report.table import (
    control_rank,
    dense_run_mask,
    parquet_bytes,
    reference_mask,
    results_frame,
)
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


def test_best_epoch_uses_the_history_own_epoch_numbers():
    # a cell rewound to k = 4 trains epochs 5..7, numbered as in the dense run
    rewound = [dict(h, epoch=h["epoch"] + 4) for h in HISTORY]
    assert best_epoch(rewound) == 6
    row = ResultRow.ok("L1-k4-none", 1, 4, TICKET, 0, SPARSITY, rewound, 1.0)
    assert (row.best_epoch, row.epochs) == (6, 3)  # epochs: what was trained
    without = [{k: v for k, v in h.items() if k != "epoch"} for h in rewound]
    assert best_epoch(without) == 2  # no "epoch" key: the 1-based position


def test_dead_structure_columns():
    assert REQUIRED_COLUMNS[15:17] == ("layers_emptied", "depthwise_channels_emptied")
    dense = ResultRow.dense(0, HISTORY)
    assert (dense.layers_emptied, dense.depthwise_channels_emptied) == (0, 0)
    summary = dict(SPARSITY, layers_emptied=2, depthwise_channels_emptied=17)
    ok = ResultRow.ok("L3-k0-none", 3, 0, TICKET, 0, summary, HISTORY, 1.0)
    assert (ok.layers_emptied, ok.depthwise_channels_emptied) == (2, 17)
    unknown = ResultRow.ok("L3-k0-none", 3, 0, TICKET, 0, SPARSITY, HISTORY, 1.0)
    assert unknown.layers_emptied is None  # a summary without the counts: not measured
    failed = ResultRow.failed("L3-k0-none", 3, 0, TICKET, 0, "boom")
    assert (failed.layers_emptied, failed.depthwise_channels_emptied) == (None, None)
    table = pq.read_table(io.BytesIO(parquet_bytes(results_frame([dense, ok, failed]))))
    types = {f.name: f.type for f in table.schema}
    assert types["layers_emptied"] == types["depthwise_channels_emptied"] == pa.int64()
    assert table.column("depthwise_channels_emptied").to_pylist() == [0, 17, None]


def test_dense_run_is_told_from_level0_cells():
    dense = ResultRow.dense(0, HISTORY).to_dict()
    reference = ResultRow.ok("L0-k1-none", 0, 1, TICKET, 0, SPARSITY, HISTORY, 1.0).to_dict()
    assert is_dense_run(dense) and not is_dense_run(reference)
    # older rows without a cell id: level 0 without a rewind epoch is the dense run
    assert is_dense_run({"level": 0, "rewind_epoch": None})
    assert not is_dense_run({"level": 0, "rewind_epoch": 1})
    frame = results_frame([reference, dense])
    assert list(dense_run_mask(frame)) == [True, False]
    assert list(reference_mask(frame)) == [False, True]


def test_replicate_and_control_seed_columns():
    # appended after the older columns, which keep their positions
    assert REQUIRED_COLUMNS[17:19] == ("replicate", "control_seed")
    dense = ResultRow.dense(5, HISTORY, replicate=2)
    assert (dense.replicate, dense.control_seed, dense.seed) == (2, None, 5)
    assert ResultRow.dense(5, HISTORY).replicate == 0  # older calls: one replicate
    ok = ResultRow.ok("L1-k0-reinit", 1, 0, "reinit", 5, SPARSITY, HISTORY, 1.0, replicate=1,
                      control_seed=2**31 - 1)
    failed = ResultRow.failed("L1-k0-random_mask", 1, 0, "random_mask", 5, "boom",
                              replicate=1, control_seed=9)
    ticket = ResultRow.ok("L1-k0-none", 1, 0, TICKET, 5, SPARSITY, HISTORY, 1.0)
    assert (ok.replicate, ok.control_seed) == (1, 2**31 - 1)
    assert (failed.replicate, failed.control_seed) == (1, 9)
    assert (ticket.replicate, ticket.control_seed) == (0, None)
    table = pq.read_table(io.BytesIO(parquet_bytes(results_frame([dense, ok, failed, ticket]))))
    types = {f.name: f.type for f in table.schema}
    assert types["replicate"] == types["control_seed"] == pa.int64()
    frame = table.to_pandas()
    assert list(zip(frame.cell, frame.replicate, strict=True)) == [
        ("dense", 2), ("L1-k0-none", 0), ("L1-k0-reinit", 1), ("L1-k0-random_mask", 1)]
    assert frame.control_seed.tolist()[1:] == [None, 2**31 - 1, 9] or (
        frame.control_seed.isna().tolist() == [True, True, False, False])
