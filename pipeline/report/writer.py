"""``write_report``: the results table, the figures and report.md of a run, through the store."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline.report import figures
from pipeline.report.markdown import FigureLink, render_report
from pipeline.report.statistics import CONFIDENCE, SUMMARY_FIELDS, summarize
from pipeline.report.table import csv_bytes, parquet_bytes, results_frame
from pipeline.store import ArtifactStore

log = logging.getLogger(__name__)

RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
SUMMARY_PARQUET = "summary.parquet"
SUMMARY_CSV = "summary.csv"
HISTORY_PARQUET = "history.parquet"
REPORT = "report.md"
ACCURACY_PNG = "figures/accuracy_vs_weights.png"
ACCURACY_CI_PNG = "figures/accuracy_vs_weights_ci.png"
ACCURACY_FLOPS_PNG = "figures/accuracy_vs_flops.png"
EARLY_STOP_PNG = "figures/early_stop_vs_weights.png"
LEARNING_CURVES_PNG = "figures/learning_curves.png"
LAYER_PNG = "figures/layer_sparsity.png"

# The per-epoch history in long format: one row per (replicate, cell, epoch); "loss" is the
# training loss, the others are measured on val. The dense training run's cell is "dense".
HISTORY_COLUMNS = ("replicate", "cell", "epoch", "learning_rate", "loss", "val_loss", "top1",
                   "top5")
# Added after HISTORY_COLUMNS in a run with a holdout (data.holdout_per_class > 0): the
# holdout's loss, which chooses the early-stop epoch, and its top-1.
HOLDOUT_HISTORY_COLUMNS = ("holdout_loss", "holdout_top1")
HISTORY_FIELDS = {
    name: pa.field(name, pa.int64() if name in ("replicate", "epoch")
                   else pa.string() if name == "cell" else pa.float64())
    for name in HISTORY_COLUMNS
}

LINES = ("Solid lines: tickets, one per rewind epoch; dashed: control runs at the same rewind "
         "epoch (same colour); dash-dotted, with a plus at 100%: the level-0 reference of that "
         "rewind epoch (unpruned, rewound and trained like the tickets); black star: the dense "
         "training run; red rings: models whose mask emptied a layer or a depthwise channel.")


def history_table(history: pd.DataFrame) -> pd.DataFrame:
    """``history`` with ``HISTORY_COLUMNS`` first and typed (missing ones null), extra columns
    after, sorted by replicate, cell and epoch. ``replicate`` and ``epoch`` are plain int64
    (an entry without an epoch makes ``epoch`` nullable)."""
    out = history.copy()
    for name in HISTORY_COLUMNS:
        if name not in out.columns:
            out[name] = None
    out = out[list(HISTORY_COLUMNS) + [c for c in out.columns if c not in HISTORY_COLUMNS]]
    out["replicate"] = pd.to_numeric(out["replicate"]).fillna(0).astype("int64")
    epoch = pd.to_numeric(out["epoch"])
    out["epoch"] = epoch.astype("int64" if epoch.notna().all() else "Int64")
    out["cell"] = out["cell"].astype(object).where(out["cell"].notna(), None)
    out["cell"] = out["cell"].map(lambda c: None if c is None else str(c))
    for name in ("learning_rate", "loss", "val_loss", "top1", "top5",
                 *(c for c in HOLDOUT_HISTORY_COLUMNS if c in out.columns)):
        out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    return out.sort_values(["replicate", "cell", "epoch"], kind="stable").reset_index(drop=True)


def write_report(
    store: ArtifactStore,
    rows: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    timings: Mapping[str, float],
    layer_sparsity_csv: str | None = None,
    history: pd.DataFrame | None = None,
    preface: str | None = None,
    line_names: figures.LineNames | None = None,
) -> str:
    """Write results.parquet/.csv, summary.parquet/.csv, history.parquet (when ``history``,
    the per-epoch long table of ``HISTORY_COLUMNS``, is given), the figures and report.md
    under ``store``.

    Returns the URL of report.md. The tables are written first so that the numbers survive
    even if drawing fails.
    """
    df = results_frame(rows)
    store.write_bytes(parquet_bytes(df), RESULTS_PARQUET)
    store.write_bytes(csv_bytes(df), RESULTS_CSV)
    summary = summarize(df)
    store.write_bytes(parquet_bytes(summary, SUMMARY_FIELDS), SUMMARY_PARQUET)
    store.write_bytes(csv_bytes(summary), SUMMARY_CSV)
    if history is not None:
        history = history_table(history)
        store.write_bytes(parquet_bytes(history, HISTORY_FIELDS), HISTORY_PARQUET)
    ci = f"{100 * CONFIDENCE:g}%"
    links = [
        FigureLink(
            "Accuracy vs. weights remaining", ACCURACY_PNG,
            "Top-1 val accuracy against the percentage of prunable weights remaining (log "
            "scale, sparser to the right): the mean over the replicates with min–max error "
            f"bars, as in Frankle & Carbin. {LINES}",
        ),
        FigureLink(
            f"Accuracy vs. weights remaining ({ci} intervals)", ACCURACY_CI_PNG,
            f"The same means with the {ci} t-interval of the mean as error bars (none with "
            "one replicate).",
        ),
        FigureLink(
            "Early-stop epoch vs. weights remaining", EARLY_STOP_PNG,
            f"Epoch of the lowest {figures.early_stop_split_of(df)} loss (numbered as in the "
            "dense run: a cell rewound to epoch k trains epochs k+1 to T), mean with min–max "
            "bars, with the same axes and lines.",
        ),
    ]
    names = line_names or figures.LineNames()
    store.write_bytes(figures.accuracy_vs_weights(df, names=names), ACCURACY_PNG)
    store.write_bytes(figures.accuracy_vs_weights(df, bars="ci", names=names), ACCURACY_CI_PNG)
    store.write_bytes(figures.early_stop_vs_weights(df, names=names), EARLY_STOP_PNG)
    title = "Accuracy vs. multiply-adds remaining"
    flops_png = figures.accuracy_vs_flops(df, names=names)
    if flops_png is not None:
        store.write_bytes(flops_png, ACCURACY_FLOPS_PNG)
        links.insert(1, FigureLink(
            title, ACCURACY_FLOPS_PNG,
            "The same means against the multiply-adds per image that remain (the kernels' "
            "surviving weights times their layers' output positions, at the model's input "
            "size): what a pruned weight saves depends on where it sits. For MobileNetV2 the "
            "depthwise layers hold few weights but many multiply-adds.",
        ))
    else:
        links.insert(1, FigureLink(title, None, "",
                                   note="the results have no multiply-add counts"))
    title = "Learning curves"
    curves = figures.learning_curves(df, history) if history is not None else None
    if curves is not None:
        store.write_bytes(curves, LEARNING_CURVES_PNG)
        links.append(FigureLink(
            title, LEARNING_CURVES_PNG,
            "Val top-1 after every epoch, one panel per pruning level: the tickets of each "
            "rewind epoch (solid) against their controls (dashed) and the level-0 reference "
            "of that rewind epoch (dash-dotted); black stars: the dense training run. Means "
            f"over the replicates with a min–max band; at most {figures.MAX_CURVE_LEVELS} "
            "levels, evenly spread.",
        ))
    else:
        note = ("no per-epoch history was given" if history is None
                else "the per-epoch history has no pruned cell with a val top-1")
        links.append(FigureLink(title, None, "", note=note))
    title = "Weights remaining per layer"
    layer_png = figures.layer_sparsity(layer_sparsity_csv) if layer_sparsity_csv else None
    if layer_png is not None:
        store.write_bytes(layer_png, LAYER_PNG)
        links.append(FigureLink(
            title, LAYER_PNG,
            "Fraction of weights remaining in each prunable kernel of the sparsest ticket, in "
            "model order; the dotted line is the fraction over all prunable weights.",
        ))
    else:
        note = ("no per-layer sparsity table was given" if not layer_sparsity_csv
                else "the per-layer sparsity table has no prunable kernels")
        links.append(FigureLink(title, None, "", note=note))
    text = render_report(df, settings, timings, links, run_url=store.root,
                         table_files=(RESULTS_CSV, RESULTS_PARQUET), summary=summary,
                         summary_files=(SUMMARY_CSV, SUMMARY_PARQUET),
                         history_file=HISTORY_PARQUET if history is not None else None,
                         preface=preface)
    url = store.write_text(text, REPORT)
    log.info("report of %d models written to %s", len(df), url)
    return url
