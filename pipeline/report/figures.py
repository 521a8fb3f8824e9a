"""Matplotlib figures of a run, rendered to PNG bytes (no pyplot, no backend, no files)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

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


def _plottable(df: pd.DataFrame, y: str) -> pd.DataFrame:
    keep = (df["status"].astype(str) == "ok") & df["level"].notna() & df[y].notna()
    ok = df[keep & df["weights_remaining_prunable"].notna()]
    return ok.assign(x=100.0 * ok["weights_remaining_prunable"], y=ok[y].astype("float64"))


def _label(control: str, rewind: int | None) -> str:
    at = "" if rewind is None else f", rewind to epoch {rewind}"
    if control == TICKET:
        return f"ticket{at}"
    return f"{control} control{at}"


def _x_ticks(ax, xs: Sequence[float]) -> None:
    """Ticks at the measured weights remaining (as in Frankle & Carbin), thinned if crowded."""
    ticks = sorted({round(float(x), 1) for x in xs}, reverse=True)
    if len(ticks) > MAX_X_TICKS:
        step = int(np.ceil(len(ticks) / MAX_X_TICKS))
        ticks = ticks[::step]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])


def _spread(values: pd.Series) -> np.ndarray | None:
    """Min–max error bar around the mean, or None for a single value."""
    lo, hi, mean = values.min(), values.max(), values.mean()
    return None if hi <= lo else np.array([[mean - lo], [hi - mean]])


def line_figure(df: pd.DataFrame, y: str, ylabel: str, title: str, y_scale: float = 1.0,
                integer_y: bool = False, dense_format: str = "{:.2f}") -> Figure:
    """``y`` vs. prunable weights remaining (log x, sparser to the right).

    One solid line per rewind epoch for the tickets, a dashed line per control and rewind
    epoch (same colour as its ticket). The level-0 reference of each rewind epoch (unpruned,
    rewound to k and trained like the tickets) is a dash-dotted horizontal line in its
    ticket's colour, from a plus at 100 %; the dense training run is a black star
    at 100 %, not a line: it is not the tickets' baseline. Points whose masks emptied a layer
    or a depthwise channel are ringed in red. Several seeds are averaged, with min–max error
    bars.
    """
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    data = _plottable(df, y)
    data = data.assign(y=data["y"] * y_scale)
    dense = data[dense_run_mask(data)]
    references = data[reference_mask(data)]
    pruned = data[data["level"] > 0]
    ax.set_title(title)
    ax.set_xlabel("prunable weights remaining (%, log scale)")
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
    for control, rewind in order:
        part = groups[(groups["control"] == control) & (groups["rewind"] == rewind)]
        stats = part.groupby("level").agg(x=("x", "mean"), y=("y", "mean"), lo=("y", "min"),
                                          hi=("y", "max"), dead=("dead", "any"))
        stats = stats.sort_values("x", ascending=False)
        rewind_epoch = None if rewind < 0 else int(rewind)
        is_ticket = control == TICKET
        yerr = None
        if (stats["hi"] > stats["lo"]).any():
            yerr = np.vstack([stats["y"] - stats["lo"], stats["hi"] - stats["y"]])
        ax.errorbar(
            stats["x"], stats["y"], yerr=yerr, capsize=3,
            color=colors.get(rewind_epoch, "gray"),
            linestyle="-" if is_ticket else "--",
            marker=control_marker(control),
            linewidth=2.0 if is_ticket else 1.3,
            alpha=1.0 if is_ticket else 0.75,
            label=_label(control, rewind_epoch),
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
        ax.errorbar([float(ref["x"].mean())], [level], yerr=_spread(ref["y"]), capsize=3,
                    color=color, marker="P", markersize=9, linestyle="-.", linewidth=1.2,
                    label=f"level 0, rewind to epoch {rewind_epoch} "
                          f"({dense_format.format(level)})")
    if not dense.empty:
        level = float(dense["y"].mean())
        ax.errorbar([float(dense["x"].mean())], [level], yerr=_spread(dense["y"]), capsize=3,
                    color="black", marker="*", markersize=13, linestyle="none",
                    label=f"dense training run ({dense_format.format(level)})")
    if dead_points:
        xs, ys = zip(*dead_points, strict=True)
        ax.scatter(xs, ys, s=220, facecolors="none", edgecolors="red", linewidths=1.6,
                   zorder=5, label=DEAD_LABEL)
    low, high = float(data["y"].min()), float(data["y"].max())
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


def accuracy_vs_weights(df: pd.DataFrame) -> bytes:
    """Top-1 val accuracy vs. prunable weights remaining (the LTH paper's figure)."""
    return png_bytes(line_figure(
        df, "top1", "top-1 val accuracy (%)", "Top-1 val accuracy vs. weights remaining",
        y_scale=100.0, dense_format="{:.2f}%",
    ))


def early_stop_vs_weights(df: pd.DataFrame) -> bytes:
    """Early-stop epoch (lowest validation loss) vs. prunable weights remaining."""
    return png_bytes(line_figure(
        df, "best_epoch", "early-stop epoch (lowest val loss)",
        "Early-stop epoch vs. weights remaining", integer_y=True, dense_format="epoch {:.0f}",
    ))


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
