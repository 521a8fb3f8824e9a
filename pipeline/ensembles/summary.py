"""The ensemble job's report: prediction ensembles against their best member and the dense
network, and merged tickets against their members."""

from __future__ import annotations

import math

import pandas as pd

from pipeline.report.statistics import CONFIDENCE, t_interval
from pipeline.report.table import markdown_table, number, percent
from pipeline.report.verdicts import judge


def _gain(row: pd.Series) -> float:
    return 100 * (float(row["top1"]) - float(row["best_member_top1"]))


def _interval_text(values: list[float]) -> tuple[str, str]:
    """Mean [CI] of point differences, and the verdict on them."""
    interval = t_interval(values, CONFIDENCE)
    text = f"{interval.mean:+.2f}"
    if not math.isnan(interval.low):
        text += f" [{interval.low:+.2f}, {interval.high:+.2f}]"
    return f"{text} (n={interval.n})", judge(values)


def _dense_line(df: pd.DataFrame) -> str:
    dense = df[df["kind"] == "dense"]["top1"].astype(float)
    if dense.empty:
        return "The run's table has no dense row."
    interval = t_interval(dense, CONFIDENCE)
    ci = ("" if math.isnan(interval.low)
          else f" [{percent(interval.low)}, {percent(interval.high)}]")
    return (f"Dense training run (the reference): top-1 {percent(interval.mean)}%{ci} over "
            f"{interval.n} replicate(s).")


def ensemble_markdown(df: pd.DataFrame, run_url: str) -> str:
    """report.md of the ensembles of the run at ``run_url`` (``df``: rows with ``kind``)."""
    parts = [f"# Ticket ensembles of `{run_url}`", _dense_line(df), "## Prediction ensembles"]
    ens = df[df["kind"] == "prediction_ensemble"]
    if ens.empty:
        parts.append("None asked for, or the run has too few replicates and rewind points.")
    else:
        parts.append(
            "Softmax average of the members' predictions on val. Top-1 in percent; gain = "
            "ensemble − best member, in points. An ensemble of K members holds K times a "
            "member's weights (the column gives one member's share).")
        body = [[r["cell"], r["members"], percent(r["weights_remaining_prunable"]),
                 percent(r["top1"]), percent(r["best_member_top1"]), number(_gain(r), 2)]
                for _, r in ens.iterrows()]
        parts.append(markdown_table(
            ["ensemble", "members", "weights per member (%)", "ensemble top-1",
             "best member top-1", "gain (points)"], body, ["l", "l", "r", "r", "r", "r"]))
        lines = []
        for (grouping, level), part in ens.groupby(["grouping", "level"], sort=True):
            if grouping != "rewinds":
                continue  # one per rewind point or one listed: not independent replicates
            text, word = _interval_text([_gain(r) for _, r in part.iterrows()])
            lines.append(f"- level {int(level)}, across {grouping}: ensemble − best member "
                         f"{text} points: {word}")
        if lines:
            parts.append(
                f"Gain over the best member, mean [{100 * CONFIDENCE:g}% t-interval] over "
                "the replicates (each replicate's ensemble across its rewind points), with "
                "the verdict of the grid's comparisons. Ensembles across replicates are one "
                "per rewind point, not independent, so they get no interval:\n\n"
                + "\n".join(lines))
    parts.append("## Merged tickets")
    merged = df[df["kind"].astype(str).str.startswith("merged_")]
    if merged.empty:
        parts.append("None asked for, or the run has one replicate and one rewind point.")
    else:
        members = df[df["kind"] == "member"]
        parts.append(
            "The union or intersection of two tickets' masks, rewound to the weights of "
            "`weights from` and trained like a grid cell (same procedure, budget and data).")
        body = []
        for _, r in merged.iterrows():
            names = [m.strip() for m in str(r["members"]).split(",")]
            shares = []
            for name in names:
                cell, _, rep = name.partition("@")
                row = members[(members["cell"] == cell) & (members["replicate"] == int(rep))]
                shares.append(percent(row["weights_remaining_prunable"].iloc[0])
                              if len(row) else "?")
            body.append([r["cell"], r["weights_from"], " + ".join(shares),
                         percent(r["weights_remaining_prunable"]), percent(r["top1"]),
                         percent(r["best_member_top1"]), number(_gain(r), 2)])
        parts.append(markdown_table(
            ["merged ticket", "weights from", "members' weights (%)", "weights (%)", "top-1",
             "best member top-1", "gain (points)"], body, ["l", "l", "r", "r", "r", "r", "r"]))
        parts.append("One merged ticket per pair: no interval; rerun with more pairs "
                     "(`ensemble.merge_pairs`) for one.")
    return "\n\n".join(parts) + "\n"
