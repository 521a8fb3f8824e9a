"""Statistics over replicates: the summary table and the paired comparisons with verdicts.

Every replicate is an independent experiment (its own initialization, data order and
control draws). The summary gives one row per (level, rewind epoch, control); the
comparisons pair a ticket with a control (or with the level-0 reference of its rewind
epoch) replicate by replicate, and judge the mean of the per-replicate differences of
top-1 by its t-interval: a paired t-interval. The verdicts' rules are
:mod:`pipeline.report.verdicts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from pipeline.report.result_row import ARROW_FIELDS, DENSE_CELL
from pipeline.report.table import control_rank, dense_run_mask, reference_mask
from pipeline.report.verdicts import (
    CONFIDENCE,
    MARGIN_POINTS,
    Evidence,
    adjusted_verdicts,
    evidence,
    verdict_of,
)
from pipeline.tickets.controls import TICKET

METRICS = ("top1", "top5")
TEST = "paired t-interval on the per-replicate differences"

@dataclass(frozen=True)
class Interval:
    """Mean, sample standard deviation and the two-sided t-interval of ``n`` values.

    ``sd``, ``low`` and ``high`` are NaN when ``n < 2`` (no spread can be estimated).
    """

    n: int
    mean: float
    sd: float
    low: float
    high: float


def t_interval(values: Sequence[float] | pd.Series | np.ndarray,
               confidence: float = CONFIDENCE) -> Interval:
    """The ``confidence`` t-interval of the mean (n − 1 degrees of freedom); NaNs are dropped."""
    x = np.asarray(values, dtype="float64")
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Interval(n, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(n, mean, sd, mean - half, mean + half)


# -- the summary table ---------------------------------------------------------------------
SUMMARY_COLUMNS = (
    "cell", "level", "rewind_epoch", "control", "n", "failed",
    *(f"{m}_{s}" for m in METRICS for s in ("mean", "sd", "min", "max", "ci_low", "ci_high")),
    "weights_remaining_prunable_mean", "best_epoch_mean", "flops_remaining_mean",
    "dense_flops_mean",
)
SUMMARY_FIELDS = {
    name: ARROW_FIELDS[name] if name in ARROW_FIELDS
    else pa.field(name, pa.int64() if name in ("n", "failed") else pa.float64())
    for name in SUMMARY_COLUMNS
}


def _ok(df: pd.DataFrame) -> pd.Series:
    return df["status"].astype(str) == "ok"


def _numbers(df: pd.DataFrame, column: str) -> pd.Series:
    """``column``'s numbers (none when a table from an older run lacks it)."""
    if column not in df:
        return pd.Series(dtype="float64")
    return pd.to_numeric(df[column], errors="coerce").dropna()


def _group_keys(df: pd.DataFrame) -> pd.DataFrame:
    """(dense, level, rewind, control) per row; the dense run has its own key, rewind -1."""
    return pd.DataFrame({
        "dense": dense_run_mask(df),
        "level": pd.to_numeric(df["level"], errors="coerce").fillna(-1).astype(int),
        "rewind": pd.to_numeric(df["rewind_epoch"], errors="coerce").fillna(-1).astype(int),
        "control": df["control"].astype(str),
    }, index=df.index)


def group_name(dense: bool, level: int, rewind: int, control: str) -> str:
    """The grid's cell name of a group ("L1-k0-reinit"), or "dense"."""
    return DENSE_CELL if dense else f"L{level}-k{rewind}-{control}"


def summarize(df: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per (level, rewind epoch, control) over the replicates (``SUMMARY_COLUMNS``).

    The dense training run is its own group (rewind epoch null). Statistics are over the
    successful rows (``n``); ``failed`` counts the others. ``sd`` is the sample standard
    deviation; ``ci_low``/``ci_high`` the ``confidence`` t-interval of the mean (null when
    n < 2). Order: the dense run, then level, rewind epoch and control as in the results.
    """
    if df.empty:
        return _typed_summary(pd.DataFrame(columns=list(SUMMARY_COLUMNS)))
    keys = _group_keys(df)
    records = []
    for (dense, level, rewind, control), index in keys.groupby(
            ["dense", "level", "rewind", "control"], sort=False).groups.items():
        rows = df.loc[index]
        ok = rows[_ok(rows)]
        record: dict[str, object] = {
            "cell": group_name(bool(dense), level, rewind, control),
            "level": None if level < 0 else level,
            "rewind_epoch": None if rewind < 0 else rewind,
            "control": control,
            "n": int(ok["top1"].notna().sum()),
            "failed": int(len(rows) - len(ok)),
        }
        for metric in METRICS:
            values = pd.to_numeric(ok[metric], errors="coerce").dropna()
            interval = t_interval(values, confidence)
            record.update({
                f"{metric}_mean": interval.mean, f"{metric}_sd": interval.sd,
                f"{metric}_min": values.min() if len(values) else math.nan,
                f"{metric}_max": values.max() if len(values) else math.nan,
                f"{metric}_ci_low": interval.low, f"{metric}_ci_high": interval.high,
            })
        for column in ("weights_remaining_prunable", "best_epoch", "flops_remaining",
                       "dense_flops"):
            values = _numbers(ok, column)
            record[f"{column}_mean"] = float(values.mean()) if len(values) else math.nan
        records.append(record)
    out = pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))
    order = sorted(range(len(out)), key=lambda i: (
        out["cell"].iloc[i] != DENSE_CELL,
        -1 if pd.isna(out["level"].iloc[i]) else out["level"].iloc[i],
        -1 if pd.isna(out["rewind_epoch"].iloc[i]) else out["rewind_epoch"].iloc[i],
        control_rank(out["control"].iloc[i])))
    return _typed_summary(out.iloc[order].reset_index(drop=True))


def _typed_summary(out: pd.DataFrame) -> pd.DataFrame:
    for name, field in SUMMARY_FIELDS.items():
        if name in ("n", "failed"):
            out[name] = pd.to_numeric(out[name]).astype("int64")
        elif field.type == pa.int64():
            out[name] = pd.to_numeric(out[name], errors="coerce").astype("Int64")
        elif field.type == pa.float64():
            out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
        else:
            out[name] = out[name].astype(object)
    return out


# -- paired comparisons --------------------------------------------------------------------
@dataclass(frozen=True)
class PairedComparison:
    """A ticket against another model of the same rewind epoch, replicate by replicate.

    ``other`` is a control's name, or ``"reference"`` for the level-0 reference cell.
    ``differences`` are ticket − other top-1 in percentage points, one per replicate where
    both succeeded (``replicates``); the means are over those same replicates.
    """

    level: int
    rewind_epoch: int | None
    weights_remaining: float | None  # prunable fraction of the ticket
    other: str
    other_cell: str
    replicates: tuple[int, ...]
    differences: tuple[float, ...]
    ticket_top1: float | None
    other_top1: float | None
    confidence: float = CONFIDENCE
    margin: float = MARGIN_POINTS

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def interval(self) -> Interval:
        return t_interval(self.differences, self.confidence)

    @property
    def evidence(self) -> Evidence:
        return evidence(self.differences, self.margin, self.confidence)

    @property
    def verdict(self) -> str:
        """The comparison's own verdict, not adjusted for the others of its report."""
        return verdict_of(self.evidence)

    @property
    def is_reference(self) -> bool:
        return self.other == REFERENCE


REFERENCE = "reference"


class ReplicateError(ValueError):
    """A results table whose rows cannot be paired by replicate."""


def _top1_by_replicate(rows: pd.DataFrame) -> pd.Series:
    """Top-1 of the successful rows by replicate: one row per replicate, or ReplicateError
    (a missing replicate number or a replicate twice is never filled in or averaged)."""
    ok = rows[_ok(rows) & rows["top1"].notna()]
    if ok.empty:
        return pd.Series(dtype="float64")
    name = str(ok["cell"].iloc[0]) if "cell" in ok else "a cell"
    if "replicate" not in ok:
        raise ReplicateError(f"{name}: the results have no replicate column to pair by")
    replicate = pd.to_numeric(ok["replicate"], errors="coerce")
    if replicate.isna().any():
        raise ReplicateError(f"{name}: {int(replicate.isna().sum())} row(s) without a "
                             "replicate number")
    duplicated = sorted({int(r) for r in replicate[replicate.duplicated()]})
    if duplicated:
        raise ReplicateError(f"{name}: replicate(s) {duplicated} appear more than once")
    return pd.Series(ok["top1"].astype("float64").to_numpy(),
                     index=replicate.astype(int).to_numpy())


def pair(level: int, rewind_epoch: int | None, weights: float | None, other: str,
         other_cell: str, tickets: pd.DataFrame, others: pd.DataFrame,
         confidence: float = CONFIDENCE, margin: float = MARGIN_POINTS) -> PairedComparison:
    """Pair the tickets' and the other rows' top-1 by replicate."""
    a, b = _top1_by_replicate(tickets), _top1_by_replicate(others)
    common = sorted(set(a.index) & set(b.index))
    diffs = tuple(float(100.0 * (a[r] - b[r])) for r in common)
    return PairedComparison(
        level=level, rewind_epoch=rewind_epoch, weights_remaining=weights, other=other,
        other_cell=other_cell, replicates=tuple(int(r) for r in common), differences=diffs,
        ticket_top1=float(a[common].mean()) if common else None,
        other_top1=float(b[common].mean()) if common else None,
        confidence=confidence, margin=margin,
    )


def paired_comparisons(df: pd.DataFrame, confidence: float = CONFIDENCE,
                       margin: float = MARGIN_POINTS) -> list[PairedComparison]:
    """Per pruned level and rewind epoch with tickets: the ticket vs. the level-0 reference
    of its rewind epoch (when that cell is in the table), then vs. each control present."""
    if df.empty:
        return []
    level = pd.to_numeric(df["level"], errors="coerce")
    rewind = pd.to_numeric(df["rewind_epoch"], errors="coerce")
    references = df[reference_mask(df) & (df["control"] == TICKET)]
    out = []
    pruned = df[level > 0]
    keys = sorted({(int(lv), -1 if pd.isna(k) else int(k))
                   for lv, k in zip(level[level > 0], rewind[level > 0], strict=True)})
    for lv, k in keys:
        rows = pruned[(level[pruned.index] == lv)
                      & (rewind[pruned.index].fillna(-1) == k)]
        tickets = rows[rows["control"] == TICKET]
        if tickets.empty:
            continue
        rewind_epoch = None if k < 0 else k
        weights = tickets["weights_remaining_prunable"].dropna()
        weight = float(weights.iloc[0]) if len(weights) else None
        ref = references[rewind[references.index] == k]
        if not ref.empty:
            out.append(pair(lv, rewind_epoch, weight, REFERENCE, f"L0-k{k}-{TICKET}",
                            tickets, ref, confidence, margin))
        controls = sorted({str(c) for c in rows["control"].dropna()} - {TICKET},
                          key=control_rank)
        for control in controls:
            out.append(pair(lv, rewind_epoch, weight, control, f"L{lv}-k{k}-{control}",
                            tickets, rows[rows["control"] == control], confidence, margin))
    return out


def holm_verdicts(comparisons: Sequence[PairedComparison]) -> list[str]:
    """The comparisons' verdicts Holm-adjusted within their family: the ticket-vs-control
    comparisons are one family, the ticket-vs-reference comparisons another."""
    out = [c.verdict for c in comparisons]
    for reference in (False, True):
        members = [i for i, c in enumerate(comparisons) if c.is_reference == reference]
        for i, v in zip(members, adjusted_verdicts([comparisons[i].evidence for i in members]),
                        strict=True):
            out[i] = v
    return out


def comparisons_frame(comparisons: Sequence[PairedComparison]) -> pd.DataFrame:
    """The comparisons as a table (for tests and notebooks), with each verdict as made
    alone and Holm-adjusted within its family (:func:`holm_verdicts`)."""
    records = []
    for c, adjusted in zip(comparisons, holm_verdicts(comparisons), strict=True):
        e = c.evidence
        records.append({
            "level": c.level, "rewind_epoch": c.rewind_epoch, "other": c.other,
            "other_cell": c.other_cell, "n": c.n, "mean_difference": e.mean,
            "ci_low": e.low, "ci_high": e.high, "p_difference": e.p_difference,
            "verdict": c.verdict, "holm_verdict": adjusted,
        })
    return pd.DataFrame.from_records(records, columns=[
        "level", "rewind_epoch", "other", "other_cell", "n", "mean_difference", "ci_low",
        "ci_high", "p_difference", "verdict", "holm_verdict"])
