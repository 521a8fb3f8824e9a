"""The text of report.md: what was run, findings, figures, results, failures, timings, settings."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.report.statistics import (
    TEST,
    PairedComparison,
    holm_verdicts,
    paired_comparisons,
    summarize,
)
from pipeline.report.table import (
    DEAD_MARK,
    cell_id,
    dead_structure_mask,
    dense_run_mask,
    integer,
    is_missing,
    markdown_table,
    number,
    percent,
    reference_mask,
    results_markdown,
    rewind_text,
)
from pipeline.report.verdicts import (
    BEAT,
    CONFIDENCE,
    FELL_BELOW,
    FEW_REPLICATES,
    INCONCLUSIVE,
    MARGIN_POINTS,
    MATCHED,
    MIN_REPLICATES,
    NO_RESULT,
    NO_SPREAD,
    NON_INFERIOR,
    UNDECIDED,
    count,
)
from pipeline.tickets.controls import TICKET

MAX_ERROR_LINES = 40


@dataclass(frozen=True)
class FigureLink:
    title: str
    path: str | None  # relative to report.md; None when the figure was skipped
    caption: str
    note: str = ""  # why it was skipped


# -- settings ------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """Settings as YAML-safe builtins (dataclasses, tuples, numpy scalars, other objects)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _get(settings: Mapping[str, Any], key: str) -> Any:
    node: Any = settings
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _listing(values: Any) -> str:
    if isinstance(values, (list, tuple)):
        return ", ".join(str(v) for v in values) if values else "none"
    return str(values)


def _ok(df: pd.DataFrame) -> pd.Series:
    return df["status"].astype(str) == "ok"


def run_summary(settings: Mapping[str, Any], df: pd.DataFrame) -> str:
    """The "what was run" paragraph, from the settings and the measured table."""
    s = plain(settings)
    parts = []
    model = _get(s, "model.name")
    alpha = _get(s, "model.alpha")
    size = _get(s, "model.image_size")
    data = _get(s, "data.url")
    text = f"Dense `{model}`" if model else "The dense model"
    text += f" (alpha {alpha})" if alpha is not None else ""
    text += " was trained" + (f" on {size}×{size} images" if size else "")
    text += f" from `{data}`" if data else ""
    epochs = _get(s, "train.epochs")
    text += f" for {epochs} epochs" if epochs is not None else ""
    train = [
        f"{name} {value}"
        for name, value in (
            ("optimizer", _get(s, "train.optimizer")),
            ("learning rate", _get(s, "train.learning_rate")),
            ("schedule", _get(s, "train.lr_schedule")),
            ("batch size", _get(s, "train.batch_size")),
            ("seed", _get(s, "run.seed")),
        )
        if value is not None
    ]
    parts.append(text + (f" ({', '.join(train)})." if train else "."))
    levels = _get(s, "prune.levels")
    fraction = _get(s, "prune.fraction_per_level")
    if levels is not None or fraction is not None:
        text = f"Pruning: {_get(s, 'prune.method') or 'magnitude'}"
        text += f" over {levels} levels" if levels is not None else ""
        if isinstance(fraction, (int, float)):
            text += f", removing {100 * fraction:g}% of the remaining prunable weights per level"
        strategy = _get(s, "prune.strategy")
        text += f" with the {strategy} strategy" if strategy else ""
        kinds = _get(s, "prune.prunable")
        text += f" (prunable kinds: {_listing(kinds)})" if kinds is not None else ""
        prune = s.get("prune") if isinstance(s.get("prune"), Mapping) else {}
        head = prune.get("classifier_fraction")
        if "classifier_fraction" in prune and isinstance(fraction, (int, float)):
            rate = fraction / 2 if head is None else head
            why = " (half the rate, as in Frankle & Carbin)" if head is None else ""
            text += f"; the output layer at {100 * rate:g}% per level{why}"
        floor = prune.get("min_layer_density")
        if isinstance(floor, (int, float)) and floor > 0:
            text += f"; every prunable kernel keeps at least {100 * floor:g}% of its weights"
        parts.append(text + ".")
    rewinds = _get(s, "rewind.epochs")
    controls = _get(s, "grid.controls")
    if rewinds is not None:
        text = f"Each ticket was rewound to epoch(s) {_listing(rewinds)} and retrained"
        text += f"; controls: {_listing(controls)}" if controls is not None else ""
        text += ("; the level-0 reference of each rewind epoch is the unpruned network rewound "
                 "and retrained the same way.")
        parts.append(text)
    ok = _ok(df)
    sparsest = df.loc[ok, "weights_remaining_prunable"].min() if ok.any() else np.nan
    text = f"{len(df)} models were trained: {int(ok.sum())} ok, {int((~ok).sum())} failed."
    replicates = int(df["replicate"].nunique()) if "replicate" in df and len(df) else 0
    if replicates > 1:
        text += (f" The grid was run as {replicates} replicates: independent experiments, each "
                 "with its own initialization, data order and control draws.")
    if not is_missing(sparsest):
        overall = df.loc[ok & (df["weights_remaining_prunable"] == sparsest),
                         "weights_remaining_overall"].min()
        text += f" The sparsest successful model keeps {percent(sparsest)}% of the prunable"
        text += f" weights ({percent(overall)}% of all parameters)"
        text += _sparsest_flops(df[ok & (df["weights_remaining_prunable"] == sparsest)]) + "."
    parts.append(text)
    return " ".join(parts)


def _sparsest_flops(rows: pd.DataFrame) -> str:
    """", and 12.3% of the multiply-adds per image (36.9 of 300.8 M)" for the sparsest rows."""
    if "flops_remaining" not in rows or "dense_flops" not in rows:
        return ""
    left = pd.to_numeric(rows["flops_remaining"], errors="coerce").dropna()
    total = pd.to_numeric(rows["dense_flops"], errors="coerce").dropna()
    if left.empty or total.empty or not total.max():
        return ""
    low, dense = float(left.min()), float(total.max())
    return (f", and {percent(low / dense)}% of the multiply-adds per image "
            f"({number(low / 1e6, 2)} of {number(dense / 1e6, 2)} M)")


def settings_yaml(settings: Mapping[str, Any]) -> str:
    return yaml.safe_dump(plain(settings), sort_keys=False, default_flow_style=False)


# -- timings -------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def timings_markdown(timings: Mapping[str, float]) -> str:
    """Stage | seconds | h:mm:ss | share; "total" is taken from ``timings`` or summed."""
    stages = {k: float(v) for k, v in timings.items() if k != "total" and not is_missing(v)}
    total = timings.get("total")
    total = float(total) if not is_missing(total) else sum(stages.values())
    body = [
        [stage, f"{sec:.1f}", _duration(sec), f"{100 * sec / total:.1f}%" if total else ""]
        for stage, sec in stages.items()
    ]
    body.append(["**total**", f"{total:.1f}", _duration(total), "100.0%" if total else ""])
    return markdown_table(["stage", "seconds", "h:mm:ss", "share"], body, ["l", "r", "r", "r"])


# -- findings ------------------------------------------------------------------------------
def _mean_top1(rows: pd.DataFrame) -> float | None:
    values = rows.loc[_ok(rows), "top1"].dropna()
    return float(values.mean()) if len(values) else None


def _replicates(rows: pd.DataFrame) -> int:
    """Successful rows with a top-1: the replicates a mean is taken over."""
    return int((_ok(rows) & rows["top1"].notna()).sum())


def _mean_of(count: int) -> str:
    return f" (mean of {count} replicates)" if count > 1 else ""


@dataclass(frozen=True)
class Reference:
    """The level-0 reference of one rewind epoch: its mean top-1, or why there is none."""

    rewind_epoch: int | None
    top1: float | None
    replicates: int
    problem: str  # "" when top1 is known, else "missing" or "failed"

    @property
    def cell(self) -> str:
        return f"L0-k{'?' if self.rewind_epoch is None else self.rewind_epoch}-{TICKET}"

    def describe(self) -> str:
        if self.top1 is None:
            return f"no level-0 reference (`{self.cell}` {self.problem})"
        return f"level-0 reference `{self.cell}` {percent(self.top1)}%" + _mean_of(
            self.replicates)


def level0_reference(df: pd.DataFrame, rewind_epoch: int | None) -> Reference:
    """The level-0 cell of ``rewind_epoch``: the like-for-like reference of its tickets.

    Never the dense training run: that one was trained by another procedure and budget.
    """
    if rewind_epoch is None or df.empty:
        return Reference(rewind_epoch, None, 0, "missing")
    rows = df[reference_mask(df) & (df["control"] == TICKET)
              & (pd.to_numeric(df["rewind_epoch"], errors="coerce") == rewind_epoch)]
    if rows.empty:
        return Reference(rewind_epoch, None, 0, "missing")
    top1 = _mean_top1(rows)
    return Reference(rewind_epoch, top1, _replicates(rows), "" if top1 is not None else "failed")


def dense_run_markdown(df: pd.DataFrame) -> str:
    """The dense training run, stated on its own: it is the source, not a baseline."""
    what = "Dense training run (source of the rewind points and the level-1 masks)"
    dense = df[dense_run_mask(df)] if not df.empty else df
    if dense.empty:
        return f"{what}: not in the table."
    top1 = _mean_top1(dense)
    if top1 is None:
        return f"{what}: no result (failed)."
    epochs = pd.to_numeric(dense.loc[_ok(dense), "epochs"], errors="coerce").dropna()
    after = f" after {int(epochs.max())} epochs" if len(epochs) else ""
    return (f"{what}: val top-1 {percent(top1)}%{after}{_mean_of(_replicates(dense))}. "
            "It is not a baseline for the "
            "tickets: each ticket is compared with the level-0 reference of its rewind epoch.")


def references_markdown(df: pd.DataFrame) -> str:
    """One line per rewind epoch of the grid: its level-0 reference, or why there is none."""
    if df.empty:
        return ""
    rewinds = pd.to_numeric(df.loc[df["level"].fillna(-1) >= 0, "rewind_epoch"],
                            errors="coerce").dropna()
    epochs = sorted({int(k) for k in rewinds})
    if not epochs:
        return ""
    lines = ["Level-0 references (the unpruned network rewound to epoch k and trained by the "
             "same code and budget as the tickets):", ""]
    for k in epochs:
        ref = level0_reference(df, k)
        lines.append(f"- rewind epoch {k}: " + (
            ref.describe() if ref.top1 is None
            else f"val top-1 {percent(ref.top1)}%{_mean_of(ref.replicates)}"))
    return "\n".join(lines)


def dead_structure_markdown(df: pd.DataFrame) -> str:
    """The cells whose masks emptied a layer or a depthwise channel (a result, not a log line)."""
    if df.empty or not {"layers_emptied", "depthwise_channels_emptied"} <= set(df.columns):
        return ""
    dead = df[dead_structure_mask(df)]
    if dead.empty:
        known = df[["layers_emptied", "depthwise_channels_emptied"]].notna().any(axis=1)
        if not (known & _ok(df)).any():
            return ""
        return "**Dead structure:** none; no mask emptied a layer or a depthwise channel."
    repeated = set(df.loc[df["cell"].duplicated(keep=False), "cell"].dropna())
    lines = [
        f"**Dead structure** (marked {DEAD_MARK} in the results table): in {len(dead)} "
        f"{'model' if len(dead) == 1 else 'models'} the mask left a whole layer or depthwise "
        "channel without weights, so the network trained is not the one the level describes. "
        "`prune.min_layer_density` prevents emptied layers and `prune.keep_depthwise_channels` "
        "emptied channels in the tickets' masks.",
        "",
    ]
    for row in dead.to_dict("records"):
        seed = (f" (replicate {integer(row.get('replicate'))}, seed {integer(row.get('seed'))})"
                if row.get("cell") in repeated else "")
        layers = 0 if is_missing(row.get("layers_emptied")) else int(row["layers_emptied"])
        channels = (0 if is_missing(row.get("depthwise_channels_emptied"))
                    else int(row["depthwise_channels_emptied"]))
        lines.append(f"- **{cell_id(row)}**{seed}: {layers} "
                     f"{'layer' if layers == 1 else 'layers'} and {channels} depthwise "
                     f"{'channel' if channels == 1 else 'channels'} emptied")
    return "\n".join(lines)


def _points(delta: float) -> str:
    return f"{delta:+.2f} points"


def method_markdown(confidence: float = CONFIDENCE, margin: float = MARGIN_POINTS) -> str:
    """How tickets are compared: the test, the margin and what the verdicts mean."""
    level = f"{100 * confidence:g}%"
    return (
        "Each ticket (control `none`) is compared with the level-0 reference of its rewind "
        "epoch and with each control run at the same level and rewind epoch, replicate by "
        f"replicate. Test: {TEST} of val top-1 (ticket − other, in percentage points): "
        f"their mean and its {level} t-interval (n − 1 degrees of freedom, n = replicates "
        "where both models finished). Pairing removes the variation from replicate to "
        "replicate, which the ticket and its comparisons share (the replicate's seed and "
        f"dense run). Verdicts: **{BEAT}** when the whole interval lies above 0, "
        f"**{FELL_BELOW}** when it lies below 0, **{MATCHED}** when it lies inside "
        f"±{margin:g} {'point' if margin == 1 else 'points'} (the margin), "
        f"**{NON_INFERIOR}** when its low end lies above −{margin:g} (the lottery ticket "
        f"hypothesis' \"matching\"), otherwise **{INCONCLUSIVE}**: the replicates cannot "
        f"tell. Fewer than {MIN_REPLICATES} replicates decide nothing: **{FEW_REPLICATES}**. "
        "When every replicate gives the same difference the interval has no width and "
        "decides nothing by itself: the exact paired sign-flip test decides, or the verdict "
        f"is **{NO_SPREAD}**. Each verdict below is the comparison's own; the counts are "
        "given both so and adjusted for multiplicity (Holm's step-down method across the "
        "report's ticket-vs-control comparisons, and separately across its "
        "ticket-vs-reference comparisons)."
    )


def _comparison_line(c: PairedComparison) -> str:
    what = (f"vs level-0 reference `{c.other_cell}`" if c.is_reference else f"vs `{c.other}`")
    if c.n == 0 or c.other_top1 is None:
        return f"  - {what}: no result (failed)"
    head = f"  - {what} {percent(c.other_top1)}%: **{c.verdict}** "
    e = c.evidence
    if c.n == 1:
        return head + f"({_points(e.mean)}, one replicate)"
    level = f"{100 * c.confidence:g}%"
    test = f", exact sign-flip p = {e.p_difference:.3g}" if e.exact else ""
    return head + (f"({_points(e.mean)}, {level} CI [{e.low:+.2f}, {e.high:+.2f}], "
                   f"{c.n} replicates{test})")


def _ticket_head(level: int, rewind_epoch: int | None, weights_remaining: float | None,
                 tickets: pd.DataFrame) -> str:
    weights = "" if weights_remaining is None else (
        f" ({percent(weights_remaining)}% of prunable weights remaining)")
    rewind = "–" if rewind_epoch is None else rewind_epoch
    head = f"- **Level {level}**{weights}, rewind epoch {rewind}: "
    top1 = _mean_top1(tickets)
    if top1 is None:
        return head + "the ticket has no result (failed), so no comparison."
    return head + f"ticket val top-1 {percent(top1)}%{_mean_of(_replicates(tickets))}"


def _ticket_blocks(df: pd.DataFrame, comparisons: list[PairedComparison]) -> list[str]:
    """Per level and rewind epoch with tickets: the ticket, then one line per comparison."""
    level = pd.to_numeric(df["level"], errors="coerce")
    rewind = pd.to_numeric(df["rewind_epoch"], errors="coerce").fillna(-1)
    tickets = df[(level > 0) & (df["control"] == TICKET)]
    lines: list[str] = []
    for lv, k in sorted({(int(a), int(b)) for a, b in
                         zip(level[tickets.index], rewind[tickets.index], strict=True)}):
        rows = tickets[(level[tickets.index] == lv) & (rewind[tickets.index] == k)]
        rewind_epoch = None if k < 0 else k
        weights = rows["weights_remaining_prunable"].dropna()
        lines.append(_ticket_head(lv, rewind_epoch, float(weights.iloc[0]) if len(weights)
                                  else None, rows))
        if _mean_top1(rows) is None:
            continue
        mine = [c for c in comparisons if (c.level, c.rewind_epoch) == (lv, rewind_epoch)]
        if not any(c.is_reference for c in mine):
            lines.append(f"  - {level0_reference(df, rewind_epoch).describe()}")
        lines += [_comparison_line(c) for c in mine]
    return lines


def _counts_text(verdicts: list[str]) -> str:
    counts = count(verdicts)
    return (f"{counts[BEAT]} beat, {counts[NON_INFERIOR]} non-inferior, {counts[MATCHED]} "
            f"matched, {counts[FELL_BELOW]} fell below, {counts[INCONCLUSIVE]} inconclusive")


def verdict_counts_markdown(comparisons: list[PairedComparison]) -> list[str]:
    """The headline counts, per family: Holm-adjusted, then each comparison alone."""
    adjusted = holm_verdicts(comparisons)
    lines = []
    for reference, name in ((False, "Against the controls"),
                            (True, "Against the level-0 references")):
        members = [i for i, c in enumerate(comparisons) if c.is_reference == reference]
        raw = [comparisons[i].verdict for i in members]
        counted = [i for i, v in zip(members, raw, strict=True) if v != NO_RESULT]
        if not counted:
            continue
        few = sum(comparisons[i].verdict == FEW_REPLICATES for i in counted)
        text = (f"{name}: {len(counted)} comparisons with results; adjusted for "
                f"multiplicity (Holm): {_counts_text([adjusted[i] for i in counted])}; each "
                f"alone: {_counts_text([comparisons[i].verdict for i in counted])}")
        text += f" ({few} with fewer than {MIN_REPLICATES} replicates)" if few else ""
        missing = len(members) - len(counted)
        lines.append(text + (f"; {missing} had no result." if missing else "."))
    return lines


def comparisons_markdown(df: pd.DataFrame) -> str:
    """Per level and rewind epoch: the ticket against its level-0 reference and each control,
    paired by replicate, with the verdict of the interval. Stated as measured."""
    if df.empty:
        return "No control runs with results to compare against; no claim about tickets."
    comparisons = paired_comparisons(df)
    controls = [c for c in comparisons if not c.is_reference]
    lines = [method_markdown(), ""]
    if not controls:
        lines += ["No control runs with results to compare against; no claim about tickets."]
    lines += verdict_counts_markdown(comparisons)
    counted = [c for c in comparisons if c.verdict != NO_RESULT]
    if counted and all(c.verdict in UNDECIDED and c.n < MIN_REPLICATES for c in counted):
        lines.append(f"Every comparison rests on fewer than {MIN_REPLICATES} replicates: set "
                     "`run.replicates` (or merge runs with other seeds) to get verdicts.")
    blocks = _ticket_blocks(df, comparisons)
    return "\n".join(lines + ([""] + blocks if blocks else []))


# -- the summary over replicates -----------------------------------------------------------
SUMMARY_HEADER = (
    "cell", "level", "rewind epoch", "control", "n", "failed", "prunable left (%)",
    "multiply-adds left (%)", "top-1 mean (%)", "top-1 sd", "top-1 min", "top-1 max",
    "top-1 95% CI", "top-5 mean (%)", "top-5 95% CI", "best epoch (mean)",
)


def _ci(low: Any, high: Any) -> str:
    if is_missing(low) or is_missing(high):
        return ""
    return f"[{percent(low)}, {percent(high)}]"


def _flops_left(row: Mapping[str, Any]) -> str:
    left, total = row.get("flops_remaining_mean"), row.get("dense_flops_mean")
    if is_missing(left) or is_missing(total) or not total:
        return ""
    return percent(float(left) / float(total))


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary table: one row per (level, rewind epoch, control), accuracies in percent."""
    body = []
    for row in summary.to_dict("records"):
        body.append([
            row["cell"], integer(row["level"]),
            "–" if is_missing(row["rewind_epoch"]) else integer(row["rewind_epoch"]),
            row["control"], integer(row["n"]), integer(row["failed"]),
            percent(row["weights_remaining_prunable_mean"]),
            _flops_left(row),
            percent(row["top1_mean"]),
            "" if is_missing(row["top1_sd"]) else number(100 * row["top1_sd"], 2),
            percent(row["top1_min"]), percent(row["top1_max"]),
            _ci(row["top1_ci_low"], row["top1_ci_high"]),
            percent(row["top5_mean"]), _ci(row["top5_ci_low"], row["top5_ci_high"]),
            number(row["best_epoch_mean"], 1),
        ])
    align = ["l", "r", "r", "l"] + ["r"] * (len(SUMMARY_HEADER) - 4)
    return markdown_table(SUMMARY_HEADER, body, align)


def findings_markdown(df: pd.DataFrame) -> str:
    """The dense run, the level-0 references, tickets vs. controls and references, and the
    cells with dead structure."""
    parts = [dense_run_markdown(df), references_markdown(df), comparisons_markdown(df),
             dead_structure_markdown(df)]
    return "\n\n".join(p for p in parts if p)


# -- failures ------------------------------------------------------------------------------
def failures_markdown(df: pd.DataFrame) -> str:
    """Every row whose status is not "ok", with its error (the last lines of a traceback)."""
    failed = df[~_ok(df)]
    if failed.empty:
        return "None: every cell finished."
    lines = []
    for row in failed.to_dict("records"):
        lines.append(
            f"- **{cell_id(row)}** (level {row.get('level')}, rewind epoch {rewind_text(row)}, "
            f"control {row.get('control')}, replicate {integer(row.get('replicate'))}, "
            f"seed {integer(row.get('seed'))}, status {row.get('status')})"
        )
        error = row.get("error")
        if is_missing(error) or not str(error).strip():
            lines.append("  - no error message was recorded")
            continue
        text = str(error).strip().splitlines()[-MAX_ERROR_LINES:]
        lines += ["", "  ```text"] + [f"  {line.replace('```', '` ` `')}" for line in text]
        lines += ["  ```", ""]
    return "\n".join(lines).rstrip()


# -- the whole report ----------------------------------------------------------------------
def figures_markdown(figures: Sequence[FigureLink]) -> str:
    blocks = []
    for fig in figures:
        if fig.path is None:
            blocks.append(f"### {fig.title}\n\n_Skipped: {fig.note}_")
        else:
            blocks.append(f"### {fig.title}\n\n![{fig.title}]({fig.path})\n\n{fig.caption}")
    return "\n\n".join(blocks)


def render_report(
    df: pd.DataFrame,
    settings: Mapping[str, Any],
    timings: Mapping[str, float],
    figures: Sequence[FigureLink],
    run_url: str | None = None,
    table_files: Sequence[str] = ("results.csv", "results.parquet"),
    summary: pd.DataFrame | None = None,
    summary_files: Sequence[str] = ("summary.csv", "summary.parquet"),
    history_file: str | None = None,
    preface: str | None = None,
) -> str:
    """The full report.md text; ``summary`` is :func:`summarize` of ``df`` unless given;
    ``preface`` (a study's own section, with its heading) comes before the findings."""
    summary = summarize(df) if summary is None else summary
    name = _get(plain(settings), "run.name")
    title = f"# Lottery ticket report: {name}" if name else "# Lottery ticket report"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = f"Run directory `{run_url}`, " if run_url else ""
    files = ", ".join(f"[`{f}`]({f})" for f in table_files)
    summary_links = ", ".join(f"[`{f}`]({f})" for f in summary_files)
    per_epoch = (f" The per-epoch history of every model (val top-1/top-5/loss, train loss, "
                 f"learning rate) is in [`{history_file}`]({history_file})."
                 if history_file else "")
    sections = [
        title,
        f"{where}report written {when}.",
        "## What was run",
        run_summary(settings, df),
        *([preface.strip()] if preface else []),
        "## Findings",
        findings_markdown(df),
        "## Summary over replicates",
        f"One row per level, rewind epoch and control over its successful replicates (n): "
        f"val accuracies in percent, sd the sample standard deviation (points), CI the "
        f"{100 * CONFIDENCE:g}% t-interval of the mean (empty for n = 1); every column is in "
        f"{summary_links}.{per_epoch}",
        summary_markdown(summary) if len(summary) else "No models in the table.",
        "## Figures",
        figures_markdown(figures),
        "## Results",
        f"Accuracies and weights remaining in percent; every column is in {files}.",
        results_markdown(df),
        f"{DEAD_MARK}: the mask emptied at least one layer or depthwise channel (see Findings).",
        "## Failed cells",
        failures_markdown(df),
        "## Stage timings",
        timings_markdown(timings),
        "## Settings",
        "```yaml\n" + settings_yaml(settings).rstrip() + "\n```",
    ]
    return "\n\n".join(sections) + "\n"
