"""The results table: rows of trained models → a sorted DataFrame, Parquet/CSV bytes, Markdown."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline.report.result_row import (
    ARROW_FIELDS,
    DENSE_CELL,
    REQUIRED_COLUMNS,
    ResultRow,
    is_dense_run,
)
from pipeline.tickets.controls import TICKET, list_controls

INT_COLUMNS = tuple(n for n, f in ARROW_FIELDS.items() if f.type == pa.int64())
FLOAT_COLUMNS = tuple(n for n, f in ARROW_FIELDS.items() if f.type == pa.float64())


def control_rank(control: Any) -> tuple[int, str]:
    """Sort key: tickets first, then the registered controls in their order, then others."""
    name = "" if control is None or control is pd.NA else str(control)
    if name == TICKET:
        return (0, "")
    known = list_controls()
    if name in known:
        return (1 + known.index(name), "")
    return (1 + len(known), name)


def _int_column(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    present = numeric.dropna()
    if (present == present.round()).all():
        return numeric.astype("Int64")
    return numeric.astype("float64")


def _arrow_safe(values: pd.Series) -> pd.Series:
    """Object columns pyarrow cannot type (mixed values) become strings, keeping nulls."""
    if values.dtype != object:
        return values
    try:
        pa.array(values, from_pandas=True)
        return values
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return values.map(lambda v: None if is_missing(v) else str(v))


def is_missing(value: Any) -> bool:
    """None, NaN and pandas NA."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def dense_run_mask(df: pd.DataFrame) -> pd.Series:
    """True on the dense training run's rows (not on level-0 reference cells)."""
    if df.empty:
        return pd.Series(False, index=df.index, dtype=bool)
    return pd.Series([is_dense_run(r) for r in df.to_dict("records")], index=df.index,
                     dtype=bool)


def reference_mask(df: pd.DataFrame) -> pd.Series:
    """True on the level-0 reference cells: unpruned, rewound to k, trained like a ticket."""
    level = pd.to_numeric(df["level"], errors="coerce")
    return (level == 0) & ~dense_run_mask(df)


def dead_structure(row: Mapping[str, Any]) -> bool:
    """True when the row's masks emptied a layer or a depthwise channel."""
    return any(not is_missing(row.get(k)) and int(row[k]) > 0
               for k in ("layers_emptied", "depthwise_channels_emptied"))


def dead_structure_mask(df: pd.DataFrame) -> pd.Series:
    return pd.Series([dead_structure(r) for r in df.to_dict("records")], index=df.index,
                     dtype=bool)


def results_frame(rows: Iterable[Mapping[str, Any] | ResultRow]) -> pd.DataFrame:
    """One row per trained model: required columns first, extra keys after, sorted.

    Order: the dense training run first, then by level (the level-0 reference cells come
    first), rewind epoch, control (tickets before controls), replicate and seed. Missing
    required keys become null columns, except ``replicate``: rows without one (tables from
    before replicates) are replicate 0.
    """
    rows = [r.to_dict() if isinstance(r, ResultRow) else dict(r) for r in rows]
    extra: list[str] = []
    for row in rows:
        extra.extend(k for k in row if k not in REQUIRED_COLUMNS and k not in extra)
    columns = list(REQUIRED_COLUMNS) + extra
    df = pd.DataFrame(rows, columns=columns)
    for name in columns:
        if name in INT_COLUMNS:
            df[name] = _int_column(df[name])
        elif name in FLOAT_COLUMNS:
            df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
        else:
            df[name] = _arrow_safe(df[name])
    df["replicate"] = df["replicate"].fillna(0)
    keys = pd.DataFrame(
        {
            "dense": (~dense_run_mask(df)).astype(int),
            "level": df["level"].fillna(-1),
            "rewind": df["rewind_epoch"].fillna(-1),
            "control": [control_rank(c) for c in df["control"]],
            "replicate": df["replicate"],
            "seed": df["seed"].fillna(-1),
        }
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


def arrow_schema(df: pd.DataFrame, fields: Mapping[str, pa.Field] | None = None) -> pa.Schema:
    """Columns named in ``fields`` (by default the row's own, typed from :class:`ResultRow`)
    take that type; other columns are inferred, and strings where nothing can be inferred
    (all missing), so no column is typed ``null``."""
    known = ARROW_FIELDS if fields is None else fields
    out = []
    for name in df.columns:
        if name in known:
            out.append(known[name])
            continue
        inferred = pa.array(df[name], from_pandas=True).type
        out.append(pa.field(name, pa.string() if inferred == pa.null() else inferred))
    return pa.schema(out)


def parquet_bytes(df: pd.DataFrame, fields: Mapping[str, pa.Field] | None = None) -> bytes:
    """``df`` as Parquet, typed by :func:`arrow_schema`."""
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, schema=arrow_schema(df, fields), preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


# -- Markdown -----------------------------------------------------------------------------
def _text(value: Any) -> str:
    return "" if is_missing(value) else str(value)


def _cell_text(value: Any) -> str:
    return _text(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(
    header: Sequence[str], body: Iterable[Sequence[Any]], align: Sequence[str] | None = None
) -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds "l" or "r" per column."""
    align = align or ["l"] * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [[_cell_text(c) for c in header], rule]
    lines += [[_cell_text(v) for v in row] for row in body]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def percent(value: Any) -> str:
    return "" if is_missing(value) else f"{100.0 * float(value):.2f}"


def number(value: Any, digits: int) -> str:
    return "" if is_missing(value) else f"{float(value):.{digits}f}"


def integer(value: Any) -> str:
    return "" if is_missing(value) else str(int(value))


def cell_id(row: Mapping[str, Any]) -> str:
    """The row's ``cell`` id, or one built like the grid's ("L1-k0-none")."""
    cell = row.get("cell")
    if not is_missing(cell) and str(cell):
        return str(cell)
    if is_dense_run(row):
        return DENSE_CELL
    level, rewind = integer(row.get("level")), integer(row.get("rewind_epoch"))
    return f"L{level}-k{rewind}-{_text(row.get('control'))}"


def rewind_text(row: Mapping[str, Any]) -> str:
    value = row.get("rewind_epoch")
    if is_missing(value) or int(value) < 0:
        return "–"
    return str(int(value))


DEAD_MARK = "†"  # after the cell id: the masks emptied a layer or a depthwise channel
RESULTS_HEADER = (
    "cell", "level", "rewind epoch", "control", "replicate", "seed", "prunable left (%)",
    "overall left (%)",
    "val top-1 (%)", "val top-5 (%)", "val loss", "best epoch", "train (s)", "status",
    "layers emptied", "dw channels emptied",
)


def results_row(row: Mapping[str, Any]) -> list[str]:
    """One row of the report's results table, formatted."""
    return [
        cell_id(row) + (f" {DEAD_MARK}" if dead_structure(row) else ""),
        integer(row.get("level")),
        rewind_text(row),
        _text(row.get("control")),
        integer(row.get("replicate")),
        integer(row.get("seed")),
        percent(row.get("weights_remaining_prunable")),
        percent(row.get("weights_remaining_overall")),
        percent(row.get("top1")),
        percent(row.get("top5")),
        number(row.get("val_loss"), 4),
        integer(row.get("best_epoch")),
        number(row.get("train_seconds"), 1),
        _text(row.get("status")),
        integer(row.get("layers_emptied")),
        integer(row.get("depthwise_channels_emptied")),
    ]


def results_markdown(df: pd.DataFrame) -> str:
    """The results table for report.md (accuracies and weights remaining in percent)."""
    align = ["l", "r", "r", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "l", "r", "r"]
    body = [results_row(row) for row in df.to_dict("records")]
    return markdown_table(RESULTS_HEADER, body, align)
