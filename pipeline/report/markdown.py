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

from pipeline.report.table import (
    cell_id,
    control_rank,
    is_missing,
    markdown_table,
    percent,
    results_markdown,
    rewind_text,
)
from pipeline.tickets.controls import TICKET

TIE_POINTS = 0.5  # top-1 differences up to this many percentage points count as a tie
MAX_ERROR_LINES = 40


@dataclass(frozen=True)
class FigureLink:
    title: str
    path: str | None  # relative to report.md; None when the figure was skipped
    caption: str
    note: str = ""  # why it was skipped


@dataclass(frozen=True)
class Comparison:
    """Mean top-1 (over seeds, successful runs only) of a ticket and one control."""

    level: int
    rewind_epoch: int | None
    weights_remaining: float | None  # prunable fraction of the ticket (or the control)
    control: str
    ticket_top1: float | None
    control_top1: float | None
    ticket_seeds: int

    @property
    def delta_points(self) -> float | None:
        if self.ticket_top1 is None or self.control_top1 is None:
            return None
        return 100.0 * (self.ticket_top1 - self.control_top1)

    @property
    def verdict(self) -> str:
        delta = self.delta_points
        if delta is None:
            return "no result"
        if abs(delta) <= TIE_POINTS + 1e-9:
            return f"tied (within {TIE_POINTS:g} points)"
        return "beat" if delta > 0 else "did not beat"


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
        parts.append(text + ".")
    rewinds = _get(s, "rewind.epochs")
    controls = _get(s, "grid.controls")
    if rewinds is not None:
        text = f"Each ticket was rewound to epoch(s) {_listing(rewinds)} and retrained"
        text += f"; controls: {_listing(controls)}." if controls is not None else "."
        parts.append(text)
    ok = _ok(df)
    sparsest = df.loc[ok, "weights_remaining_prunable"].min() if ok.any() else np.nan
    text = f"{len(df)} models were trained: {int(ok.sum())} ok, {int((~ok).sum())} failed."
    if not is_missing(sparsest):
        overall = df.loc[ok & (df["weights_remaining_prunable"] == sparsest),
                         "weights_remaining_overall"].min()
        text += f" The sparsest successful model keeps {percent(sparsest)}% of the prunable"
        text += f" weights ({percent(overall)}% of all parameters)."
    parts.append(text)
    return " ".join(parts)


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


def compare_to_controls(df: pd.DataFrame) -> list[Comparison]:
    """Ticket vs. each control at the same level and rewind epoch, in table order."""
    pruned = df[df["level"].fillna(0) > 0]
    pruned = pruned.assign(rewind=pruned["rewind_epoch"].astype("float64").fillna(-1))
    out = []
    for (level, rewind), cell in pruned.groupby(["level", "rewind"], sort=True):
        tickets = cell[cell["control"] == TICKET]
        ticket_top1 = _mean_top1(tickets)
        seeds = int((_ok(tickets) & tickets["top1"].notna()).sum())
        weights = tickets["weights_remaining_prunable"].dropna()
        if weights.empty:
            weights = cell["weights_remaining_prunable"].dropna()
        controls = sorted({str(c) for c in cell["control"].dropna()} - {TICKET}, key=control_rank)
        for control in controls:
            out.append(Comparison(
                level=int(level),
                rewind_epoch=None if rewind < 0 else int(rewind),
                weights_remaining=float(weights.iloc[0]) if len(weights) else None,
                control=control,
                ticket_top1=ticket_top1,
                control_top1=_mean_top1(cell[cell["control"] == control]),
                ticket_seeds=seeds,
            ))
    return out


def _points(delta: float) -> str:
    return f"{delta:+.2f} points"


def findings_markdown(df: pd.DataFrame) -> str:
    """Per level and rewind epoch: did the ticket beat each control? Stated as measured."""
    comparisons = compare_to_controls(df)
    if not comparisons:
        return "No control runs with results to compare against; no claim about tickets."
    verdicts = [c.verdict for c in comparisons]
    tie = f"tied (within {TIE_POINTS:g} points)"
    counted = [v for v in verdicts if v != "no result"]
    lines = [
        "Top-1 test accuracy of each ticket (control `none`) against its control runs at the "
        f"same level and rewind epoch; differences up to {TIE_POINTS:g} points count as a tie.",
        "",
        f"Out of {len(counted)} comparisons with both results, the ticket beat the control "
        f"{verdicts.count('beat')} times, tied {verdicts.count(tie)} times and did not beat it "
        f"{verdicts.count('did not beat')} times"
        + (f"; {len(verdicts) - len(counted)} had no result." if len(counted) < len(verdicts)
           else "."),
    ]
    if max(c.ticket_seeds for c in comparisons) <= 1:
        lines.append("Each accuracy comes from a single seed, so small differences may be noise.")
    lines.append("")
    dense = df[(df["level"].fillna(-1) == 0)]
    dense_top1 = _mean_top1(dense) if len(dense) else None
    current = None
    for c in comparisons:
        if (c.level, c.rewind_epoch) != current:
            current = (c.level, c.rewind_epoch)
            weights = "" if c.weights_remaining is None else (
                f" ({percent(c.weights_remaining)}% of prunable weights remaining)")
            rewind = "–" if c.rewind_epoch is None else c.rewind_epoch
            head = f"- **Level {c.level}**{weights}, rewind epoch {rewind}: "
            if c.ticket_top1 is None:
                head += "the ticket has no result (failed), so no comparison."
            else:
                head += f"ticket top-1 {percent(c.ticket_top1)}%"
                head += f" (mean of {c.ticket_seeds} seeds)" if c.ticket_seeds > 1 else ""
                if dense_top1 is not None:
                    delta = 100.0 * (c.ticket_top1 - dense_top1)
                    head += f"; dense {percent(dense_top1)}% ({_points(delta)})"
            lines.append(head)
        if c.control_top1 is None:
            lines.append(f"  - vs `{c.control}`: no result (failed)")
        elif c.delta_points is None:
            lines.append(f"  - vs `{c.control}` {percent(c.control_top1)}%: no comparison")
        else:
            lines.append(f"  - vs `{c.control}` {percent(c.control_top1)}%: **{c.verdict}** "
                         f"({_points(c.delta_points)})")
    return "\n".join(lines)


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
            f"control {row.get('control')}, seed {row.get('seed')}, status {row.get('status')})"
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
) -> str:
    """The full report.md text."""
    name = _get(plain(settings), "run.name")
    title = f"# Lottery ticket report: {name}" if name else "# Lottery ticket report"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = f"Run directory `{run_url}`, " if run_url else ""
    files = ", ".join(f"[`{f}`]({f})" for f in table_files)
    sections = [
        title,
        f"{where}report written {when}.",
        "## What was run",
        run_summary(settings, df),
        "## Findings",
        findings_markdown(df),
        "## Figures",
        figures_markdown(figures),
        "## Results",
        f"Accuracies and weights remaining in percent; every column is in {files}.",
        results_markdown(df),
        "## Failed cells",
        failures_markdown(df),
        "## Stage timings",
        timings_markdown(timings),
        "## Settings",
        "```yaml\n" + settings_yaml(settings).rstrip() + "\n```",
    ]
    return "\n\n".join(sections) + "\n"
