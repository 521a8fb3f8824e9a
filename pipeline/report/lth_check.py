"""A finished run read against the lottery ticket hypothesis (Frankle & Carbin 2019).

For each rewind epoch with tickets, level by level: the tickets' mean val top-1 against the
level-0 reference of the same rewind epoch (the unpruned network trained by the same
procedure) and against random re-initialization, paired by replicate; and the early-stop
epoch (lowest holdout loss, or val loss in a run without a holdout: the results'
``early_stop_split``) of tickets, controls and reference. Two checks state the paper's
claims as targets:

* **match**: at every level with at least ``MATCH_DOWN_TO`` of the weights remaining the
  ticket is non-inferior to the reference, paired by replicate: the low end of the paired
  95% interval of ticket − reference lies above −``MATCH_POINTS`` (with at least three
  replicates; identical differences go to the exact sign-flip test,
  :mod:`pipeline.report.verdicts`). The claim holds only when every level's does (an
  intersection-union test), so it needs no adjustment for the number of levels;
* **beat**: at the sparsest level with at most ``SPARSE_AT`` remaining (one comparison,
  named in advance), the ticket beats random re-initialization: the verdict of the paired
  comparison is "beat" (its 95% interval lies above 0).

``match_down_to`` is the sparsest level down to which every level matches. The paper's
abstract: winning tickets "less than 10-20% of the size" of LeNet-300-100 and Conv-2/4/6;
"above this size, the winning tickets ... learn faster than the original network and reach
higher test accuracy", while randomly reinitialized ones learn slower and lose accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.report.statistics import REFERENCE, PairedComparison, paired_comparisons
from pipeline.report.verdicts import BEAT, MARGIN_POINTS, non_inferior
from pipeline.tickets.controls import TICKET

RANDOM_MASK = "random_mask"

MATCH_POINTS = MARGIN_POINTS
MATCH_DOWN_TO = 0.20
SPARSE_AT = 0.07
REINIT = "reinit"


@dataclass(frozen=True)
class LevelLine:
    """One pruning level of one rewind epoch, means over replicates."""

    level: int
    weights_remaining: float
    ticket: float
    reference: float | None
    vs_reference: PairedComparison | None
    vs_reinit: PairedComparison | None
    controls: dict[str, float]
    best_epoch: dict[str, float]  # ticket, reference and each control

    @property
    def matches(self) -> bool:
        """Non-inferior to the level-0 reference, paired by replicate."""
        return self.vs_reference is not None and non_inferior(self.vs_reference.evidence)


@dataclass(frozen=True)
class RewindCheck:
    rewind_epoch: int
    reference_top1: float | None
    reference_best_epoch: float | None
    levels: list[LevelLine]

    @property
    def match_down_to(self) -> float | None:
        """Weights remaining at the sparsest level down to which every level matches."""
        last = None
        for line in self.levels:
            if not line.matches:
                break
            last = line.weights_remaining
        return last

    @property
    def matches_target(self) -> bool:
        dense_enough = [ln for ln in self.levels if ln.weights_remaining >= MATCH_DOWN_TO]
        return bool(dense_enough) and all(ln.matches for ln in dense_enough)

    @property
    def sparse_line(self) -> LevelLine | None:
        """The sparsest level with at most SPARSE_AT of the weights remaining."""
        sparse = [ln for ln in self.levels if ln.weights_remaining <= SPARSE_AT + 1e-12]
        return sparse[-1] if sparse else None

    @property
    def beats_target(self) -> bool:
        line = self.sparse_line
        return line is not None and line.vs_reinit is not None and line.vs_reinit.verdict == BEAT


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & df["top1"].notna() & (df["cell"] != "dense")]


def _mean(rows: pd.DataFrame, column: str) -> float:
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else float("nan")


def check_run(df: pd.DataFrame) -> list[RewindCheck]:
    """The checks of every rewind epoch that has tickets, in rewind order."""
    ok = _ok(df)
    level = pd.to_numeric(ok["level"], errors="coerce")
    rewind = pd.to_numeric(ok["rewind_epoch"], errors="coerce")
    pairs = {(c.level, c.rewind_epoch, c.other): c for c in paired_comparisons(df)}
    checks = []
    for k in sorted({int(x) for x in rewind.dropna()}):
        at_k = ok[rewind == k]
        ref = at_k[(level[at_k.index] == 0) & (at_k["control"] == TICKET)]
        lines = []
        for lv in sorted({int(x) for x in level[at_k.index] if x > 0}):
            rows = at_k[level[at_k.index] == lv]
            tickets = rows[rows["control"] == TICKET]
            if tickets.empty:
                continue
            controls = sorted({str(c) for c in rows["control"]} - {TICKET})
            lines.append(LevelLine(
                level=lv,
                weights_remaining=_mean(tickets, "weights_remaining_prunable"),
                ticket=_mean(tickets, "top1"),
                reference=_mean(ref, "top1") if len(ref) else None,
                vs_reference=pairs.get((lv, k, REFERENCE)),
                vs_reinit=pairs.get((lv, k, REINIT)),
                controls={c: _mean(rows[rows["control"] == c], "top1") for c in controls},
                best_epoch={TICKET: _mean(tickets, "best_epoch"),
                            **{c: _mean(rows[rows["control"] == c], "best_epoch")
                               for c in controls}},
            ))
        checks.append(RewindCheck(
            rewind_epoch=k,
            reference_top1=_mean(ref, "top1") if len(ref) else None,
            reference_best_epoch=_mean(ref, "best_epoch") if len(ref) else None,
            levels=lines))
    return checks


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or np.isnan(value) else f"{100 * value:.{digits}f}%"


def _interval(c: PairedComparison | None) -> str:
    if c is None or c.n < 2:
        return "—"
    i = c.interval
    return f"{i.mean:+.2f} [{i.low:+.2f}, {i.high:+.2f}]"


def _epoch(value: float | None) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.1f}"


def check_markdown(checks: list[RewindCheck]) -> str:
    """The checks as Markdown: the two targets, then a table per rewind epoch."""
    out = []
    for check in checks:
        k = check.rewind_epoch
        sparse = check.sparse_line
        down_to = check.match_down_to
        out += [
            f"### Rewind to epoch {k}",
            "",
            f"- level-0 reference `L0-k{k}-none`: mean val top-1 "
            f"{_pct(check.reference_top1, 2)}, early-stop epoch "
            f"{_epoch(check.reference_best_epoch)}",
            f"- tickets non-inferior to the reference (paired 95% interval above "
            f"−{MATCH_POINTS:g} pt) at every level with ≥ {MATCH_DOWN_TO:.0%} of the weights "
            f"remaining: **{'yes' if check.matches_target else 'no'}**; every level is "
            f"non-inferior down to {_pct(down_to) if down_to is not None else 'none'} "
            "remaining",
            f"- at the sparsest level with ≤ {SPARSE_AT:.0%} remaining "
            + (f"({_pct(sparse.weights_remaining)}), ticket − reinit "
               f"{_interval(sparse.vs_reinit)} pt (paired 95% interval): "
               f"**{'beats' if check.beats_target else 'does not beat'}** random "
               "re-initialization"
               if sparse else "(none in this run): not checked"),
            "",
            "| level | weights remaining | ticket | reference | reinit | random mask | "
            "ticket − reference, pt | ticket − reinit, pt | early stop: ticket / reinit / "
            "reference |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for ln in check.levels:
            out.append(
                f"| {ln.level} | {_pct(ln.weights_remaining)} | {_pct(ln.ticket, 2)} | "
                f"{_pct(ln.reference, 2)} | {_pct(ln.controls.get(REINIT), 2)} | "
                f"{_pct(ln.controls.get(RANDOM_MASK), 2)} | {_interval(ln.vs_reference)} | "
                f"{_interval(ln.vs_reinit)} | {_epoch(ln.best_epoch.get(TICKET))} / "
                f"{_epoch(ln.best_epoch.get(REINIT))} / {_epoch(check.reference_best_epoch)} |")
        out.append("")
    return "\n".join(out)


def run_markdown(run_url: str) -> str:
    """The checks of the finished run at ``run_url`` (its ``results.parquet``) as Markdown."""
    import io

    from pipeline.report.writer import RESULTS_PARQUET
    from pipeline.store import ArtifactStore

    store = ArtifactStore(run_url)
    if not store.exists(RESULTS_PARQUET):
        raise ValueError(f"{store.root} has no {RESULTS_PARQUET}: the run has not finished")
    df = pd.read_parquet(io.BytesIO(store.read_bytes(RESULTS_PARQUET)))
    replicates = pd.to_numeric(df["replicate"], errors="coerce").nunique()
    return "\n".join([f"## {store.root}", "", f"{replicates} replicate(s); top-1 on the val "
                      "split at the last epoch, means over replicates; intervals are paired "
                      "95% t-intervals in points.", "", check_markdown(check_run(df))])
