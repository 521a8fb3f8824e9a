"""``write_report``: the results table, the figures and report.md of a run, through the store."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.report import figures
from pipeline.report.markdown import FigureLink, render_report
from pipeline.report.table import csv_bytes, parquet_bytes, results_frame
from pipeline.store import ArtifactStore

log = logging.getLogger(__name__)

RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
REPORT = "report.md"
ACCURACY_PNG = "figures/accuracy_vs_weights.png"
EARLY_STOP_PNG = "figures/early_stop_vs_weights.png"
LAYER_PNG = "figures/layer_sparsity.png"


def write_report(
    store: ArtifactStore,
    rows: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    timings: Mapping[str, float],
    layer_sparsity_csv: str | None = None,
) -> str:
    """Write results.parquet/.csv, the figures and report.md under ``store``.

    Returns the URL of report.md. The table is written first so that the numbers survive
    even if drawing fails.
    """
    df = results_frame(rows)
    store.write_bytes(parquet_bytes(df), RESULTS_PARQUET)
    store.write_bytes(csv_bytes(df), RESULTS_CSV)
    links = [
        FigureLink(
            "Accuracy vs. weights remaining", ACCURACY_PNG,
            "Top-1 val accuracy against the percentage of prunable weights remaining (log "
            "scale, sparser to the right). Solid lines: tickets, one per rewind epoch; dashed: "
            "control runs at the same rewind epoch (same colour); dash-dotted, with a plus at "
            "100%: the level-0 reference of that rewind epoch (unpruned, rewound and trained "
            "like the tickets); black star: the dense training run; red rings: models whose "
            "mask emptied a layer or a depthwise channel.",
        ),
        FigureLink(
            "Early-stop epoch vs. weights remaining", EARLY_STOP_PNG,
            "Epoch of the lowest val loss (numbered as in the dense run: a cell rewound to "
            "epoch k trains epochs k+1 to T), with the same axes and lines.",
        ),
    ]
    store.write_bytes(figures.accuracy_vs_weights(df), ACCURACY_PNG)
    store.write_bytes(figures.early_stop_vs_weights(df), EARLY_STOP_PNG)
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
                         table_files=(RESULTS_CSV, RESULTS_PARQUET))
    url = store.write_text(text, REPORT)
    log.info("report of %d models written to %s", len(df), url)
    return url
