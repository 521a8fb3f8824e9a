"""Matplotlib figures of a run, rendered to PNG bytes (no pyplot, no backend, no files)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

from pipeline.report.result_row import DENSE_CELL
from pipeline.report.statistics import CONFIDENCE, t_interval
from pipeline.report.table import (
    control_rank,
    dead_structure_mask,
    dense_run_mask,
    reference_mask,
)
from pipeline.tickets.controls import TICKET, control_marker

FIGSIZE = (10.0, 5.5)  # inches; the legend sits to the right of the axes
DPI = 100  # so the line plots are 1000 × 550 pixels
LAYER_FIG_WIDTH = 8.0
MAX_X_TICKS = 10
KIND_COLORS = {"conv": "tab:blue", "depthwise": "tab:orange", "dense": "tab:green"}
DEAD_LABEL = "layer or depthwise channel emptied"
SPARSITY_COLUMNS = ("tensor", "layer", "kind", "role", "prunable", "size", "remaining", "fraction")


def png_bytes(fig: Figure) -> bytes:
    # No bbox_inches="tight": the pixel size stays figsize × dpi, which tests and viewers rely on.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


XAxis = Literal["weights", "flops"]
X_LABELS = {"weights": "prunable weights remaining (%, log scale)",
            "flops": "multiply-adds per image remaining (%, log scale)"}


def _x_values(df: pd.DataFrame, x: XAxis) -> pd.Series:
    """Percent remaining of the weights or of the multiply-adds (NaN where unknown)."""
    if x == "weights":
        return 100.0 * pd.to_numeric(df["weights_remaining_prunable"], errors="coerce")
    if "flops_remaining" not in df or "dense_flops" not in df:
        return pd.Series(np.nan, index=df.index)
    left = pd.to_numeric(df["flops_remaining"], errors="coerce").astype("float64")
    total = pd.to_numeric(df["dense_flops"], errors="coerce").astype("float64")
    return 100.0 * left / total.where(total > 0)


def _plottable(df: pd.DataFrame, y: str, x: XAxis = "weights") -> pd.DataFrame:
    keep = (df["status"].astype(str) == "ok") & df["level"].notna() & df[y].notna()
    xs = _x_values(df, x)
    ok = df[keep & xs.notna()]
    return ok.assign(x=xs[ok.index], y=ok[y].astype("float64"))


@dataclass(frozen=True)
class LineNames:
    """What the legend calls each line; a study (a transfer, say) names its own."""

    ticket: str = "ticket"
    reference: str = "level 0"
    dense: str = "dense training run"
    controls: Mapping[str, str] = field(default_factory=dict)  # default: "<name> control"


def _label(control: str, rewind: int | None, names: LineNames = LineNames()) -> str:
    at = "" if rewind is None else f", rewind to epoch {rewind}"
    if control == TICKET:
        return f"{names.ticket}{at}"
    return f"{names.controls.get(control, f'{control} control')}{at}"


def _x_ticks(ax, xs: Sequence[float]) -> None:
    """Ticks at the measured weights remaining (as in Frankle & Carbin), thinned if crowded."""
    ticks = sorted({round(float(x), 1) for x in xs}, reverse=True)
    if len(ticks) > MAX_X_TICKS:
        step = int(np.ceil(len(ticks) / MAX_X_TICKS))
        ticks = ticks[::step]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])


Bars = Literal["range", "ci"]
BAR_TEXT = {"range": "min–max over replicates",
            "ci": f"{100 * CONFIDENCE:g}% t-interval of the mean over replicates"}


def _bounds(values: pd.Series, bars: Bars) -> tuple[float, float, float]:
    """(mean, low, high) of ``values``: the min–max range or the t-interval (NaN for n < 2)."""
    values = values.dropna().astype("float64")
    if bars == "ci":
        interval = t_interval(values)
        return interval.mean, interval.low, interval.high
    return float(values.mean()), float(values.min()), float(values.max())


def _spread(values: pd.Series, bars: Bars = "range") -> np.ndarray | None:
    """The error bar around the mean, or None when there is none (a single value)."""
    mean, lo, hi = _bounds(values, bars)
    if not (hi > lo):  # also NaN
        return None
    return np.array([[mean - lo], [hi - mean]])


def line_figure(df: pd.DataFrame, y: str, ylabel: str, title: str, y_scale: float = 1.0,
                integer_y: bool = False, dense_format: str = "{:.2f}",
                bars: Bars = "range", names: LineNames = LineNames(),
                x: XAxis = "weights") -> Figure:
    """``y`` vs. prunable weights remaining (log x, sparser to the right), or vs. the
    multiply-adds per image remaining (``x="flops"``).

    One solid line per rewind epoch for the tickets, a dashed line per control and rewind
    epoch (same colour as its ticket). The level-0 reference of each rewind epoch (unpruned,
    rewound to k and trained like the tickets) is a dash-dotted horizontal line in its
    ticket's colour, from a plus at 100 %; the dense training run is a black star
    at 100 %, not a line: it is not the tickets' baseline. Points whose masks emptied a layer
    or a depthwise channel are ringed in red. Replicates are averaged, with min–max error
    bars (``bars="range"``, as in Frankle & Carbin) or the 95% t-interval of the mean
    (``bars="ci"``).
    """
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    data = _plottable(df, y, x)
    data = data.assign(y=data["y"] * y_scale)
    dense = data[dense_run_mask(data)]
    references = data[reference_mask(data)]
    pruned = data[data["level"] > 0]
    ax.set_title(title)
    ax.set_xlabel(X_LABELS[x])
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if data.empty:
        ax.text(0.5, 0.5, "no successful runs to plot", ha="center", va="center",
                transform=ax.transAxes)
        return fig
    rewinds = sorted({int(r) for r in pd.concat([pruned, references])["rewind_epoch"].dropna()})
    colors = {r: f"C{i % 10}" for i, r in enumerate(rewinds)}
    groups = pruned.assign(rewind=pruned["rewind_epoch"].astype("float64").fillna(-1),
                           dead=dead_structure_mask(pruned))
    order = sorted(groups.groupby(["control", "rewind"]).groups,
                   key=lambda k: (control_rank(k[0]), k[1]))
    dead_points: list[tuple[float, float]] = []
    extremes = list(data["y"])  # every value and bar end must be inside the y limits
    for control, rewind in order:
        part = groups[(groups["control"] == control) & (groups["rewind"] == rewind)]
        stats = part.groupby("level").agg(x=("x", "mean"), dead=("dead", "any"))
        bounds = part.groupby("level")["y"].apply(lambda v: _bounds(v, bars))
        stats["y"] = [b[0] for b in bounds[stats.index]]
        stats["lo"] = [b[1] for b in bounds[stats.index]]
        stats["hi"] = [b[2] for b in bounds[stats.index]]
        stats = stats.sort_values("x", ascending=False)
        rewind_epoch = None if rewind < 0 else int(rewind)
        is_ticket = control == TICKET
        yerr = None
        has_bar = stats["hi"] > stats["lo"]
        if has_bar.any():
            yerr = np.vstack([np.where(has_bar, stats["y"] - stats["lo"], 0.0),
                              np.where(has_bar, stats["hi"] - stats["y"], 0.0)])
            extremes += list(stats.loc[has_bar, "lo"]) + list(stats.loc[has_bar, "hi"])
        ax.errorbar(
            stats["x"], stats["y"], yerr=yerr, capsize=3,
            color=colors.get(rewind_epoch, "gray"),
            linestyle="-" if is_ticket else "--",
            marker=control_marker(control),
            linewidth=2.0 if is_ticket else 1.3,
            alpha=1.0 if is_ticket else 0.75,
            label=_label(control, rewind_epoch, names),
        )
        dead_points += list(zip(stats.loc[stats["dead"], "x"], stats.loc[stats["dead"], "y"],
                                strict=True))
    for rewind_epoch in rewinds:
        ref = references[references["rewind_epoch"].astype("float64") == rewind_epoch]
        if ref.empty:
            continue
        level = float(ref["y"].mean())
        color = colors[rewind_epoch]
        ax.axhline(level, color=color, linestyle="-.", linewidth=1.2, alpha=0.9)
        ax.errorbar([float(ref["x"].mean())], [level], yerr=_spread(ref["y"], bars), capsize=3,
                    color=color, marker="P", markersize=9, linestyle="-.", linewidth=1.2,
                    label=f"{names.reference}, rewind to epoch {rewind_epoch} "
                          f"({dense_format.format(level)})")
    if not dense.empty:
        level = float(dense["y"].mean())
        ax.errorbar([float(dense["x"].mean())], [level], yerr=_spread(dense["y"], bars),
                    capsize=3,
                    color="black", marker="*", markersize=13, linestyle="none",
                    label=f"{names.dense} ({dense_format.format(level)})")
    if dead_points:
        xs, ys = zip(*dead_points, strict=True)
        ax.scatter(xs, ys, s=220, facecolors="none", edgecolors="red", linewidths=1.6,
                   zorder=5, label=DEAD_LABEL)
    for part in (references, dense):
        for _, values in part.groupby(part["rewind_epoch"].astype("float64").fillna(-1))["y"]:
            extremes += [v for v in _bounds(values, bars)[1:] if np.isfinite(v)]
    low, high = float(np.nanmin(extremes)), float(np.nanmax(extremes))
    pad = 0.06 * (high - low) or 0.5
    ax.set_ylim(low - pad, high + pad)
    ax.set_xscale("log")
    xs = list(data["x"])
    ax.set_xlim(max(xs) * 1.08, min(xs) / 1.08)  # inverted: sparser to the right
    _x_ticks(ax, xs)
    if integer_y:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == DEAD_LABEL)  # ring last
    fig.legend([handles[i] for i in order], [labels[i] for i in order], fontsize="small",
               ncols=2 if len(handles) > 14 else 1, loc="outside right upper")
    return fig


def _bars_title(title: str, bars: Bars) -> str:
    return f"{title}\n(mean; bars: {BAR_TEXT[bars]})"


def accuracy_vs_weights(df: pd.DataFrame, bars: Bars = "range",
                        names: LineNames = LineNames()) -> bytes:
    """Top-1 val accuracy vs. prunable weights remaining (the LTH paper's figure)."""
    return png_bytes(line_figure(
        df, "top1", "top-1 val accuracy (%)",
        _bars_title("Top-1 val accuracy vs. weights remaining", bars),
        y_scale=100.0, dense_format="{:.2f}%", bars=bars, names=names,
    ))


def accuracy_vs_flops(df: pd.DataFrame, bars: Bars = "range",
                      names: LineNames = LineNames()) -> bytes | None:
    """Top-1 val accuracy vs. the multiply-adds per image remaining; None when no row has
    them (a table from before they were counted)."""
    if _plottable(df, "top1", "flops").empty:
        return None
    return png_bytes(line_figure(
        df, "top1", "top-1 val accuracy (%)",
        _bars_title("Top-1 val accuracy vs. multiply-adds remaining", bars),
        y_scale=100.0, dense_format="{:.2f}%", bars=bars, names=names, x="flops",
    ))


def early_stop_split_of(df: pd.DataFrame) -> str:
    """The split whose loss chose the early-stop epochs of ``df`` (its ``early_stop_split``
    column): "holdout" when any row's did, else "val" (older tables have no column)."""
    if "early_stop_split" in df.columns and (df["early_stop_split"] == "holdout").any():
        return "holdout"
    return "val"


def early_stop_vs_weights(df: pd.DataFrame, bars: Bars = "range",
                          names: LineNames = LineNames()) -> bytes:
    """Early-stop epoch (lowest holdout loss, or val loss without a holdout) vs. prunable
    weights remaining."""
    return png_bytes(line_figure(
        df, "best_epoch", f"early-stop epoch (lowest {early_stop_split_of(df)} loss)",
        _bars_title("Early-stop epoch vs. weights remaining", bars), integer_y=True,
        dense_format="epoch {:.0f}", bars=bars, names=names,
    ))


# -- learning curves -----------------------------------------------------------------------
MAX_CURVE_LEVELS = 6  # panels; more levels are thinned evenly, keeping the first and last
CURVE_PANEL = (4.6, 3.4)  # inches per panel
CURVE_COLUMNS = 3


def _cell_keys(df: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """``history`` with level, rewind epoch and control of each (replicate, cell): from the
    results rows, or parsed from the grid's cell name when the row is not in the table."""
    keys = df[["replicate", "cell", "level", "rewind_epoch", "control"]].dropna(subset=["cell"])
    keys = keys.assign(replicate=pd.to_numeric(keys["replicate"]).fillna(0).astype("int64"),
                       cell=keys["cell"].astype(str))
    keys = keys.drop_duplicates(["replicate", "cell"])
    out = history.assign(replicate=pd.to_numeric(history["replicate"]).astype("int64"),
                         cell=history["cell"].astype(str))
    out = out.merge(keys, on=["replicate", "cell"], how="left")
    parsed = out["cell"].str.extract(r"^L(\d+)-k(\d+)-(.+)$")
    out["level"] = pd.to_numeric(out["level"]).fillna(pd.to_numeric(parsed[0]))
    out["rewind_epoch"] = pd.to_numeric(out["rewind_epoch"]).fillna(pd.to_numeric(parsed[1]))
    out["control"] = out["control"].fillna(parsed[2])
    dense = out["cell"] == DENSE_CELL
    out.loc[dense, "level"] = 0
    out.loc[dense, "control"] = TICKET
    return out


def _shown_levels(levels: Sequence[int]) -> list[int]:
    if len(levels) <= MAX_CURVE_LEVELS:
        return list(levels)
    picks = np.linspace(0, len(levels) - 1, MAX_CURVE_LEVELS).round().astype(int)
    return [levels[i] for i in sorted(set(picks))]


def _curve(ax, rows: pd.DataFrame, **style) -> None:  # noqa: ANN001
    """Mean val top-1 per epoch over the replicates, with a min–max band."""
    by_epoch = rows.groupby("epoch")["top1"].agg(["mean", "min", "max"]).sort_index()
    by_epoch = 100.0 * by_epoch
    (line,) = ax.plot(by_epoch.index, by_epoch["mean"], **style)
    if (by_epoch["max"] > by_epoch["min"]).any():
        ax.fill_between(by_epoch.index, by_epoch["min"], by_epoch["max"],
                        color=line.get_color(), alpha=0.12, linewidth=0)


def learning_curves(df: pd.DataFrame, history: pd.DataFrame) -> bytes | None:
    """Val top-1 by epoch: one panel per pruning level, the tickets of each rewind epoch
    (solid) against their controls (dashed) and the level-0 reference of that rewind epoch
    (dash-dotted); the dense training run in black with stars. Means over the replicates
    with a min–max band. None when the history has no pruned cell with a val top-1."""
    data = _cell_keys(df, history.dropna(subset=["top1", "epoch"]))
    levels = sorted({int(v) for v in data["level"].dropna() if v > 0})
    if not levels:
        return None
    shown = _shown_levels(levels)
    columns = min(CURVE_COLUMNS, len(shown))
    rows_n = int(np.ceil(len(shown) / columns))
    fig = Figure(figsize=(CURVE_PANEL[0] * columns + 2.6, CURVE_PANEL[1] * rows_n + 0.6),
                 dpi=DPI, layout="constrained")
    axes = fig.subplots(rows_n, columns, squeeze=False, sharey=True)
    rewinds = sorted({int(r) for r in data["rewind_epoch"].dropna()})
    colors = {r: f"C{i % 10}" for i, r in enumerate(rewinds)}
    dense = data[data["cell"] == DENSE_CELL]
    references = data[(data["level"] == 0) & (data["cell"] != DENSE_CELL)]
    labelled: dict[str, object] = {}
    for ax, level in zip(axes.flat, shown, strict=False):
        part = data[data["level"] == level]
        ax.set_title(f"level {level}")
        ax.grid(True, alpha=0.3)
        if not dense.empty:
            _curve(ax, dense, color="black", marker="*", markersize=6, linewidth=1.0,
                   label="dense training run")
        for k in sorted({int(r) for r in part["rewind_epoch"].dropna()}):
            ref = references[references["rewind_epoch"] == k]
            if not ref.empty:
                _curve(ax, ref, color=colors[k], linestyle="-.", marker="P", markersize=4,
                       linewidth=1.2, label=f"level 0, rewind to epoch {k}")
            mine = part[part["rewind_epoch"] == k]
            for control in sorted(set(mine["control"].astype(str)), key=control_rank):
                is_ticket = control == TICKET
                _curve(ax, mine[mine["control"] == control], color=colors[k],
                       linestyle="-" if is_ticket else "--", marker=control_marker(control),
                       markersize=4, linewidth=2.0 if is_ticket else 1.3,
                       alpha=1.0 if is_ticket else 0.75, label=_label(control, k))
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labelled.setdefault(label, handle)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch (numbered as in the dense run)")
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 val accuracy (%)")
    title = "Val top-1 by epoch (mean over replicates; band: min–max)"
    if len(shown) < len(levels):
        title += f"; {len(shown)} of {len(levels)} levels shown"
    fig.suptitle(title)
    fig.legend(list(labelled.values()), list(labelled), fontsize="small",
               loc="outside right upper")
    return png_bytes(fig)


def prunable_kernels(csv_text: str) -> tuple[pd.DataFrame, float | None]:
    """Prunable kernel rows of a sparsity CSV in model order, and its TOTAL prunable fraction."""
    table = pd.read_csv(io.StringIO(csv_text))
    missing = [c for c in SPARSITY_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"layer sparsity CSV lacks columns {missing}")
    prunable = table["prunable"].astype(str).str.lower() == "true"
    totals = table[table["kind"] == "total"]
    kernels = table[prunable & (table["kind"] != "total")].reset_index(drop=True)
    total = totals[totals["tensor"] == "TOTAL prunable"]["fraction"]
    return kernels, (float(total.iloc[0]) if len(total) else None)


def layer_sparsity_height(n_layers: int) -> float:
    """Figure height in inches for ``n_layers`` horizontal bars."""
    return max(3.0, 0.2 * n_layers + 1.5)


def layer_sparsity(csv_text: str) -> bytes | None:
    """Horizontal bars: fraction remaining per prunable kernel; None without prunable rows."""
    kernels, total = prunable_kernels(csv_text)
    if kernels.empty:
        return None
    n = len(kernels)
    fig = Figure(figsize=(LAYER_FIG_WIDTH, layer_sparsity_height(n)), dpi=DPI,
                 layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(n)
    colors = [KIND_COLORS.get(str(k), "tab:gray") for k in kernels["kind"]]
    bars = ax.barh(positions, 100.0 * kernels["fraction"], color=colors)
    ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=2)  # shows fully pruned (0 %) kernels
    ax.set_yticks(positions, [str(name) for name in kernels["layer"]], fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("weights remaining (%)")
    ax.set_title("Weights remaining per prunable kernel (sparsest ticket)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_ylim(n - 0.5, -0.5)  # model order, input at the top
    handles = [Patch(color=KIND_COLORS.get(kind, "tab:gray"), label=kind)
               for kind in dict.fromkeys(str(k) for k in kernels["kind"])]
    if total is not None:
        handles.append(ax.axvline(100.0 * total, color="black", linestyle=":",
                                  label=f"all prunable ({100.0 * total:.2f}%)"))
    fig.legend(handles=handles, fontsize="small", loc="outside lower center", ncols=len(handles))
    return png_bytes(fig)
