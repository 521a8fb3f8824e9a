"""One row of the results table: a trained model (the dense run, a ticket or a control run).

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
    level: int  # 0 = the dense model
    rewind_epoch: int | None
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
    epochs: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def dense(cls, seed: int, history: Sequence[Mapping[str, Any]]) -> ResultRow:
        """The dense training run, from its per-epoch history."""
        final = history[-1] if history else {}
        return cls(
            level=0, rewind_epoch=None, control=TICKET, seed=seed,
            weights_remaining_prunable=1.0, weights_remaining_overall=1.0,
            top1=final.get("top1"), top5=final.get("top5"), val_loss=final.get("val_loss"),
            best_epoch=best_epoch(history),
            train_seconds=round(sum(h.get("seconds", 0.0) for h in history), 3),
            status="ok", cell="dense", error=None, epochs=len(history),
        )

    @classmethod
    def ok(
        cls, cell: str, level: int, rewind_epoch: int, control: str, seed: int,
        sparsity: Mapping[str, float], history: Sequence[Mapping[str, Any]], seconds: float,
    ) -> ResultRow:
        """A trained grid cell; ``sparsity`` holds the two ``weights_remaining_*`` values."""
        last = history[-1] if history else {}
        return cls(
            level=level, rewind_epoch=rewind_epoch, control=control, seed=seed,
            weights_remaining_prunable=sparsity["weights_remaining_prunable"],
            weights_remaining_overall=sparsity["weights_remaining_overall"],
            top1=last.get("top1"), top5=last.get("top5"), val_loss=last.get("val_loss"),
            best_epoch=best_epoch(history), train_seconds=round(seconds, 3), status="ok",
            cell=cell, error=None, epochs=len(history),
        )

    @classmethod
    def failed(cls, cell: str, level: int, rewind_epoch: int, control: str, seed: int,
               error: str) -> ResultRow:
        """A grid cell that could not be trained, with the reason."""
        return cls(
            level=level, rewind_epoch=rewind_epoch, control=control, seed=seed,
            weights_remaining_prunable=None, weights_remaining_overall=None, top1=None,
            top5=None, val_loss=None, best_epoch=None, train_seconds=None, status="failed",
            cell=cell, error=error, epochs=0,
        )


def best_epoch(history: Sequence[Mapping[str, Any]]) -> int | None:
    """The epoch (1-based) with the lowest val loss: the early-stop epoch."""
    valid = [(h["val_loss"], i + 1) for i, h in enumerate(history)
             if h.get("val_loss") is not None and math.isfinite(h["val_loss"])]
    return min(valid)[1] if valid else None


REQUIRED_COLUMNS = tuple(f.name for f in dataclasses.fields(ResultRow))

_ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string()}


def _arrow_type(annotation: str) -> pa.DataType:
    base = annotation.split("|")[0].strip()
    return _ARROW_TYPES[{"int": int, "float": float, "str": str}[base]]


# The Parquet schema of the row's columns: every column typed, none ``null`` even when all
# its values are missing (a failed-only column, the dense row's rewind epoch).
ARROW_FIELDS = {f.name: pa.field(f.name, _arrow_type(str(f.type)), nullable=True)
                for f in dataclasses.fields(ResultRow)}
