"""Instability along the linear path between two copies, and the rewind point it picks.

Frankle, Dziugaite, Roy & Carbin (2020): the instability of a network at rewind point k is
the highest error on the path between the two copies trained from k, minus the mean of the
two endpoint errors. The network is stable at k when instability is below a threshold (2%
there). Over replicates, k is recommended only when the upper end of the 95% interval of
its mean instability is below the threshold: one replicate, or replicates that cannot
bound the mean, recommend nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.report.statistics import CONFIDENCE, t_interval

THRESHOLD = 0.02


def instability(errors: Sequence[float]) -> float:
    """Highest error on the path minus the mean of its two ends (``errors`` in α order)."""
    path = np.asarray(errors, dtype=np.float64)
    if path.size < 2 or np.isnan(path).any():
        return math.nan
    return float(path.max() - (path[0] + path[-1]) / 2.0)


def path_instabilities(path: pd.DataFrame) -> pd.DataFrame:
    """One instability per replicate, subject, level, k and split from rows with columns
    ``replicate, subject, level, k, alpha, split, top1`` (error = 1 − top-1)."""
    keys = ["replicate", "subject", "level", "k", "split"]
    rows = []
    for key, group in path.sort_values("alpha").groupby(keys, sort=True):
        errors = 1.0 - group["top1"].to_numpy(dtype=np.float64)
        rows.append({**dict(zip(keys, key, strict=True)),
                     "instability": instability(errors),
                     "error_ends": float((errors[0] + errors[-1]) / 2.0),
                     "error_max": float(errors.max())})
    return pd.DataFrame(rows, columns=[*keys, "instability", "error_ends", "error_max"])


@dataclass(frozen=True)
class StabilityAt:
    """Mean instability over replicates at one (subject, level, k, split), with its
    interval, and whether it is stable (the interval's upper end below the threshold)."""

    subject: str
    level: int
    k: int
    split: str
    n: int
    mean: float
    low: float
    high: float
    stable: bool


def summarize(per_replicate: pd.DataFrame, threshold: float = THRESHOLD,
              confidence: float = CONFIDENCE) -> list[StabilityAt]:
    out = []
    keys = ["subject", "level", "k", "split"]
    for key, group in per_replicate.groupby(keys, sort=True):
        interval = t_interval(group["instability"], confidence)
        stable = interval.n >= 2 and math.isfinite(interval.high) and interval.high < threshold
        out.append(StabilityAt(*key, n=interval.n, mean=interval.mean, low=interval.low,
                               high=interval.high, stable=bool(stable)))
    return out


def recommended_rewind_epoch(summary: Sequence[StabilityAt], subject: str = "dense",
                             level: int = 0, split: str = "val") -> int | None:
    """The earliest k at which ``subject`` (at ``level``) is stable on ``split``; None when
    no k is."""
    stable = sorted(s.k for s in summary
                    if s.subject == subject and s.level == level and s.split == split
                    and s.stable)
    return stable[0] if stable else None


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def stability_json(summary: Sequence[StabilityAt], recommended: int | None,
                   settings) -> dict:  # noqa: ANN001 - StabilitySettings
    """``stability.json``: the recommendation, why, and every (subject, level, k) row."""
    if recommended is None:
        reason = ("no rewind point is stable: at none does the upper end of the 95% interval "
                  f"of the dense network's val instability fall below {settings.threshold}")
    else:
        reason = (f"epoch {recommended} is the earliest rewind point at which the upper end of "
                  "the 95% interval of the dense network's val instability is below "
                  f"{settings.threshold}")
    return {
        "recommended_rewind_epoch": recommended,
        "reason": reason,
        "threshold": settings.threshold,
        "batchnorm": settings.batchnorm,
        "alphas": settings.alphas,
        "instability": [{**{k: v for k, v in vars(s).items()
                            if k not in ("mean", "low", "high")},
                         "mean": _number(s.mean), "ci_low": _number(s.low),
                         "ci_high": _number(s.high)} for s in summary],
    }


def stability_markdown(summary: Sequence[StabilityAt], recommended: int | None,
                       settings, figures: Sequence[str] = ()) -> str:  # noqa: ANN001
    """The report's "Stability" section (``settings``: the StabilitySettings; ``figures``:
    their paths in the run directory)."""
    def cell(value: float) -> str:
        return "n/a" if not math.isfinite(value) else f"{100 * value:.2f}"

    lines = [
        "## Stability",
        "",
        "Instability analysis (Frankle, Dziugaite, Roy & Carbin 2020): from each rewind point "
        "k two copies train to the end on two data orders; instability is the highest error "
        "on the straight line between them minus the mean of the two ends "
        f"({settings.alphas} points). Stable: the upper end of the 95% interval over "
        f"replicates below {100 * settings.threshold:g}%. BatchNorm statistics: "
        f"{settings.batchnorm}"
        + (" (recomputed at every point, the ends included, from the same train batches)."
           if settings.batchnorm == "recompute" else
           " (blended like weights; interpolated networks lose activation variance, so the "
           "path's error can be overstated)."),
        "",
        "| subject | level | k | split | n | instability (points) | 95% interval | stable |",
        "|---|---:|---:|---|---:|---:|---|---|",
    ]
    for s in summary:
        lines.append(f"| {s.subject} | {s.level} | {s.k} | {s.split} | {s.n} | "
                     f"{cell(s.mean)} | [{cell(s.low)}, {cell(s.high)}] | "
                     f"{'yes' if s.stable else 'no'} |")
    lines += ["", f"Recommended rewind point: epoch {recommended}." if recommended is not None
              else "Recommended rewind point: none; no rewind point is stable on these data."]
    lines += ["", *(f"![{name}]({name})" for name in figures)]
    return "\n".join(lines) + "\n"


PATH_PNG = "figures/stability_path.png"
INSTABILITY_PNG = "figures/instability_vs_k.png"


def path_figure(path: pd.DataFrame, split: str = "val") -> bytes | None:
    """Error against alpha, one line per rewind point k (mean over replicates), one panel
    per subject and level."""
    from matplotlib.figure import Figure

    from pipeline.report.figures import FIGSIZE, png_bytes

    rows = path[path["split"] == split]
    if rows.empty:
        return None
    panels = sorted(set(zip(rows["subject"], rows["level"], strict=True)))
    fig = Figure(figsize=(FIGSIZE[0], FIGSIZE[1] * len(panels) ** 0.5))
    for i, (subject, level) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, i)
        mine = rows[(rows["subject"] == subject) & (rows["level"] == level)]
        for k, group in mine.groupby("k", sort=True):
            mean = group.groupby("alpha")["top1"].mean()
            ax.plot(mean.index, 100 * (1 - mean.to_numpy()), marker=".", label=f"k = {k}")
        name = "dense network" if subject == "dense" else f"level-{level} ticket"
        ax.set_title(f"{name}: {split} error on the line between the two copies")
        ax.set_xlabel("alpha")
        ax.set_ylabel("error (%)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return png_bytes(fig)


def instability_figure(summary: Sequence[StabilityAt], threshold: float,
                       split: str = "val") -> bytes | None:
    """Instability against k with its 95% interval, one line per subject and level, and
    the threshold."""
    from matplotlib.figure import Figure

    from pipeline.report.figures import FIGSIZE, png_bytes

    shown = [s for s in summary if s.split == split]
    if not shown:
        return None
    fig = Figure(figsize=FIGSIZE)
    ax = fig.add_subplot(1, 1, 1)
    for subject, level in sorted({(s.subject, s.level) for s in shown}):
        line = sorted((s for s in shown if s.subject == subject and s.level == level),
                      key=lambda s: s.k)
        ks = [s.k for s in line]
        mean = np.array([100 * s.mean for s in line])
        low = np.array([100 * (s.mean - s.low) if math.isfinite(s.low) else 0 for s in line])
        high = np.array([100 * (s.high - s.mean) if math.isfinite(s.high) else 0 for s in line])
        name = "dense network" if subject == "dense" else f"level-{level} ticket"
        ax.errorbar(ks, mean, yerr=[low, high], marker="o", capsize=3, label=name)
    ax.axhline(100 * threshold, color="gray", linestyle="--",
               label=f"threshold {100 * threshold:g}%")
    ax.set_xlabel("rewind point k (epoch)")
    ax.set_ylabel(f"instability on {split} (points; 95% interval)")
    ax.set_title("Instability against the rewind point")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return png_bytes(fig)
