"""One row of the results table: a trained model (the dense run, a ticket or a control run).

Level 0 holds two kinds of row: the dense training run (``cell == "dense"``, no rewind
epoch), which is the source of the rewind points and level-1 masks, and the level-0
reference cells (``cell == "L0-k{k}-none"``): the unpruned network rewound to epoch k and
trained by the grid's own code and budget, the like-for-like reference of every ticket
rewound to k. :func:`is_dense_run` tells them apart.

:class:`ResultRow` is the only definition of the table's columns: ``REQUIRED_COLUMNS`` and
the Parquet schema derive from its fields, and rows are made through its constructors
(:meth:`ResultRow.dense`, :meth:`ResultRow.ok`, :meth:`ResultRow.failed`), never by hand.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.tickets.controls import TICKET


@dataclass(frozen=True)
class ResultRow:
    # Scripts outside the project read these names; the order is the table's column order.
    level: int  # 0 = unpruned: the dense run or a level-0 reference cell
    rewind_epoch: int | None  # None for the dense run
    control: str  # "none" for tickets (pipeline.tickets.controls.TICKET) and the dense model
    seed: int
    weights_remaining_prunable: float | None
    weights_remaining_overall: float | None
    top1: float | None
    top5: float | None
    val_loss: float | None
    best_epoch: int | None
    train_seconds: float | None
    status: str  # "ok" or "failed"
    cell: str
    error: str | None
    epochs: int  # epochs trained (a cell rewound to k trains k+1..T)
    # Dead structure (pipeline.tickets.sparsity): masked kernels with no weight left, and
    # depthwise channels with no weight left; None when unknown (a failed cell).
    layers_emptied: int | None = None
    depthwise_channels_emptied: int | None = None
    # Replicates are independent experiments (own init, data order, control draws); ``seed``
    # is the replicate's seed. Appended last so the older columns keep their positions.
    replicate: int = 0  # 0-based
    control_seed: int | None = None  # a control's own draw seed; None for other rows
    # The seed of the batch order the model trained on: one per replicate for every cell
    # (grid.data_order), the replicate's seed for the dense run.
    data_order_seed: int | None = None
    # data.holdout_per_class > 0: the holdout's top-1 and loss after the last epoch; and the
    # split whose loss chose best_epoch: "holdout" when the run has one, else "val".
    holdout_top1: float | None = None
    holdout_loss: float | None = None
    early_stop_split: str | None = None
    # Multiply-adds per image of the kernels (pipeline.tickets.flops): with the weights
    # that remain, and with all of them; None when unknown (a failed cell, older runs).
    flops_remaining: int | None = None
    dense_flops: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def dense(cls, seed: int, history: Sequence[Mapping[str, Any]],
              replicate: int = 0, dense_flops: int | None = None) -> ResultRow:
        """The dense training run, from its per-epoch history; ``dense_flops`` is the
        model's multiply-adds per image."""
        final = history[-1] if history else {}
        return cls(
            level=0, rewind_epoch=None, control=TICKET, seed=seed,
            weights_remaining_prunable=1.0, weights_remaining_overall=1.0,
            top1=final.get("top1"), top5=final.get("top5"), val_loss=final.get("val_loss"),
            best_epoch=best_epoch(history),
            train_seconds=round(sum(h.get("seconds", 0.0) for h in history), 3),
            status="ok", cell=DENSE_CELL, error=None, epochs=len(history),
            layers_emptied=0, depthwise_channels_emptied=0, replicate=replicate,
            data_order_seed=seed, holdout_top1=final.get("holdout_top1"),
            holdout_loss=final.get("holdout_loss"), early_stop_split=early_stop_split(history),
            flops_remaining=dense_flops, dense_flops=dense_flops,
        )

    @classmethod
    def ok(
        cls, cell: str, level: int, rewind_epoch: int, control: str, seed: int,
        sparsity: Mapping[str, float], history: Sequence[Mapping[str, Any]], seconds: float,
        replicate: int = 0, control_seed: int | None = None,
        data_order_seed: int | None = None,
    ) -> ResultRow:
        """A trained grid cell; ``sparsity`` is a ``SparsityReport.summary()``: the two
        ``weights_remaining_*`` values, the dead-structure counts and the multiply-adds
        (None when absent)."""
        last = history[-1] if history else {}
        return cls(
            level=level, rewind_epoch=rewind_epoch, control=control, seed=seed,
            weights_remaining_prunable=sparsity["weights_remaining_prunable"],
            weights_remaining_overall=sparsity["weights_remaining_overall"],
            top1=last.get("top1"), top5=last.get("top5"), val_loss=last.get("val_loss"),
            best_epoch=best_epoch(history), train_seconds=round(seconds, 3), status="ok",
            cell=cell, error=None, epochs=len(history),
            layers_emptied=_count(sparsity.get("layers_emptied")),
            depthwise_channels_emptied=_count(sparsity.get("depthwise_channels_emptied")),
            replicate=replicate, control_seed=control_seed, data_order_seed=data_order_seed,
            holdout_top1=last.get("holdout_top1"), holdout_loss=last.get("holdout_loss"),
            early_stop_split=early_stop_split(history),
            flops_remaining=_count(sparsity.get("flops_remaining")),
            dense_flops=_count(sparsity.get("dense_flops")),
        )

    @classmethod
    def failed(cls, cell: str, level: int, rewind_epoch: int, control: str, seed: int,
               error: str, replicate: int = 0, control_seed: int | None = None,
               data_order_seed: int | None = None) -> ResultRow:
        """A grid cell that could not be trained, with the reason."""
        return cls(
            level=level, rewind_epoch=rewind_epoch, control=control, seed=seed,
            weights_remaining_prunable=None, weights_remaining_overall=None, top1=None,
            top5=None, val_loss=None, best_epoch=None, train_seconds=None, status="failed",
            cell=cell, error=error, epochs=0, replicate=replicate, control_seed=control_seed,
            data_order_seed=data_order_seed,
        )


    @classmethod
    def evaluated(cls, cell: str, level: int, rewind_epoch: int | None, seed: int,
                  weights_remaining_prunable: float, weights_remaining_overall: float,
                  result: Mapping[str, Any], replicate: int = 0) -> ResultRow:
        """A model that was evaluated, not trained (a prediction ensemble): no epochs."""
        return cls(
            level=level, rewind_epoch=rewind_epoch, control=TICKET, seed=seed,
            weights_remaining_prunable=weights_remaining_prunable,
            weights_remaining_overall=weights_remaining_overall, top1=result.get("top1"),
            top5=result.get("top5"), val_loss=result.get("val_loss"), best_epoch=None,
            train_seconds=0.0, status="ok", cell=cell, error=None, epochs=0,
            replicate=replicate,
        )

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> ResultRow:
        """A row read back from a results table (missing values as None, extra keys
        dropped)."""
        def clean(value: Any) -> Any:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return None
            return value.item() if hasattr(value, "item") else value

        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: clean(row.get(n)) for n in names if n in row})

    @classmethod
    def relabelled(cls, row: ResultRow, control: str) -> ResultRow:
        """``row`` under another control name (and the cell name that goes with it), for
        rows a study reads from another run (the target run's tickets of a transfer)."""
        return dataclasses.replace(
            row, control=control, cell=f"L{row.level}-k{row.rewind_epoch}-{control}")


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def early_stop_split(history: Sequence[Mapping[str, Any]]) -> str | None:
    """The split whose loss chooses the early-stop epoch: ``"holdout"`` when the history
    was evaluated on a holdout (``data.holdout_per_class`` > 0), else ``"val"``; None for
    an empty history. Val reports, it does not choose, wherever a holdout exists: a model
    whose holdout losses are all NaN has no early-stop epoch rather than val's."""
    if any(h.get("holdout_loss") is not None for h in history):
        return "holdout"
    return "val" if history else None


def best_epoch(history: Sequence[Mapping[str, Any]]) -> int | None:
    """The early-stop epoch: the epoch with the lowest loss on :func:`early_stop_split`
    (the holdout's when there is one, val's otherwise), numbered as in the dense run: the
    entry's own ``"epoch"`` (a cell rewound to k starts at k + 1), or its 1-based position
    when the entry has none. Ties go to the earlier entry."""
    split = early_stop_split(history)
    if split is None:
        return None
    key = f"{split}_loss"
    valid = [(h[key], i, int(h.get("epoch", i + 1))) for i, h in enumerate(history)
             if _finite(h.get(key))]
    return min(valid)[2] if valid else None


DENSE_CELL = "dense"


def is_dense_run(row: Mapping[str, Any]) -> bool:
    """True for the dense training run's row, False for level-0 reference cells and the rest.

    Rows without a ``cell`` (older tables) fall back to level 0 without a rewind epoch.
    """
    cell = row.get("cell")
    if isinstance(cell, str) and cell:
        return cell == DENSE_CELL
    level, rewind = row.get("level"), row.get("rewind_epoch")
    return _is_number(level) and int(level) == 0 and not _is_number(rewind)


def _is_number(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return False
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


REQUIRED_COLUMNS = tuple(f.name for f in dataclasses.fields(ResultRow))

_ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string()}


def _arrow_type(annotation: str) -> pa.DataType:
    base = annotation.split("|")[0].strip()
    return _ARROW_TYPES[{"int": int, "float": float, "str": str}[base]]


# The Parquet schema of the row's columns: every column typed, none ``null`` even when all
# its values are missing (a failed-only column, the dense row's rewind epoch).
ARROW_FIELDS = {f.name: pa.field(f.name, _arrow_type(str(f.type)), nullable=True)
                for f in dataclasses.fields(ResultRow)}
