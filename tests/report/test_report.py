"""The report stage: results table, figures and report.md written through the artifact store."""

from __future__ import annotations

import io
import math
import os
import random
import re

import pandas as pd
import pytest
import yaml
from PIL import Image

from pipeline.report import write_report
from pipeline.report.figures import (
    DPI,
    FIGSIZE,
    layer_sparsity,
    layer_sparsity_height,
    line_figure,
    prunable_kernels,
)
from pipeline.report.markdown import render_report
from pipeline.report.result_row import ResultRow
from pipeline.report.table import results_frame, results_markdown
from pipeline.store import ArtifactStore
from pipeline.tickets.controls import TICKET

# Spelled out rather than imported: scripts outside the project depend on these exact names.
REQUIRED = [
    "level", "rewind_epoch", "control", "seed", "weights_remaining_prunable",
    "weights_remaining_overall", "top1", "top5", "val_loss", "best_epoch", "train_seconds",
    "status",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ERROR = "Traceback (most recent call last):\n  File \"cell.py\"\nRuntimeError: executor lost"

# top-1 per (level, rewind epoch, control), chosen so that each verdict is known.
TOP1 = {
    (1, 0): {"none": 0.700, "reinit": 0.600, "random_mask": 0.698},  # beat, tied
    (1, 1): {"none": 0.720, "reinit": 0.750, "random_mask": 0.710},  # did not beat, beat
    (2, 0): {"none": 0.660, "reinit": 0.500, "random_mask": 0.670},  # beat, did not beat
    (2, 1): {"none": 0.680, "reinit": 0.550, "random_mask": math.nan},  # beat, failed
}
SETTINGS = {
    "data": {"url": "hdfs://namenode/imagenet/petastorm", "num_classes": 0},
    "run": {"name": "ticket-test", "seed": 0},
    "model": {"name": "mobilenet_v2", "image_size": 224, "alpha": 1.0},
    "train": {"epochs": 6, "batch_size": 64, "optimizer": "sgd", "learning_rate": 0.05,
              "lr_schedule": "cosine"},
    "prune": {"method": "imp", "levels": 2, "fraction_per_level": 0.2, "strategy": "global",
              "prunable": ["conv", "depthwise", "dense"], "first_conv_fraction": None,
              "classifier_fraction": None, "min_layer_density": 0.05},
    "rewind": {"epochs": [0, 1]},
    "grid": {"controls": ["reinit", "random_mask"], "mode": "task"},
}
TIMINGS = {"dense": 123.4, "masks": 2.1, "grid": 300.0, "evaluate": 10.0, "report": 1.2}


def _row(level: int, rewind: int | None, control: str, top1: float) -> dict:
    failed = math.isnan(top1)
    keep = 0.8**level
    dense = level == 0 and rewind is None
    return {
        "cell": "dense" if dense else f"L{level}-k{rewind}-{control}",
        "level": level,
        "rewind_epoch": rewind,
        "control": control,
        "seed": 0,
        "weights_remaining_prunable": keep,
        "weights_remaining_overall": keep + 0.01 * (level > 0),
        "top1": top1,
        "top5": math.nan if failed else min(1.0, top1 + 0.2),
        "val_loss": math.nan if failed else 2.0 - top1,
        "best_epoch": None if failed else 2 + level + (rewind or 0),
        "train_seconds": 5.0 if failed else 95.5,
        "status": "failed" if failed else "ok",
        "error": ERROR if failed else None,
        "epochs": 6 - (rewind or 0),
        "layers_emptied": None if failed else 0,
        "depthwise_channels_emptied": None if failed else 0,
        "model": "mobilenet_v2",
        "flops_remaining": None if failed else round(300e6 * 0.9**level),
        "dense_flops": None if failed else 300_000_000,
    }


def _rows() -> list[dict]:
    # The dense run, the level-0 reference of k = 0 and none for k = 1 (its cell is missing).
    rows = [_row(0, None, "none", 0.75), _row(0, 0, "none", 0.74)]
    for (level, rewind), by_control in TOP1.items():
        rows += [_row(level, rewind, c, top1) for c, top1 in by_control.items()]
    for row in rows:  # L2-k0's random mask emptied two depthwise channels of one layer
        if row["cell"] == "L2-k0-random_mask":
            row["depthwise_channels_emptied"] = 2
    random.Random(3).shuffle(rows)  # the report must sort them
    return rows


def _sparsity_csv(n: int = 53) -> str:
    """A SparsityReport.to_csv() look-alike: kernels, a bias, BatchNorm, then the totals."""
    lines = ["tensor,layer,kind,role,prunable,size,remaining,fraction"]
    for i in range(n):
        kind = ("conv", "depthwise", "dense")[i % 3]
        size, left = 1000, 1000 - 15 * i
        lines.append(f"k{i}/kernel,layer_{i},{kind},,True,{size},{left},{left / size}")
        lines.append(f"bn{i}/gamma,bn_{i},batchnorm,,False,10,10,1.0")
    lines.append("conv_first/kernel,conv_first,conv,first_conv,False,50,50,1.0")
    lines.append("TOTAL prunable,,total,,True,53000,30000,0.5660")
    lines.append("TOTAL overall,,total,,False,54580,31580,0.5786")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[str, str]:
    """One report of the synthetic grid: (run directory, report.md URL)."""
    root = tmp_path_factory.mktemp("run")
    url = write_report(ArtifactStore(str(root)), _rows(), SETTINGS, TIMINGS, _sparsity_csv())
    return str(root), url


def _findings(report: str) -> dict[tuple[int, int], str]:
    section = report.split("## Findings", 1)[1].split("\n## ", 1)[0]
    blocks = {}
    for block in section.split("- **Level ")[1:]:
        match = re.match(r"(\d+)\*\* \([\d.]+% of prunable weights remaining\), rewind epoch (\d+)",
                         block)
        assert match, block
        blocks[(int(match[1]), int(match[2]))] = block
    return blocks


def test_results_table_files(run) -> None:
    root, _ = run
    parquet = pd.read_parquet(os.path.join(root, "results.parquet"))
    csv = pd.read_csv(os.path.join(root, "results.csv"))
    for table in (parquet, csv):
        assert len(table) == 2 + 4 * 3
        assert list(table.columns[: len(REQUIRED)]) == REQUIRED
        assert set(table.columns[len(REQUIRED):]) == {
            "cell", "error", "epochs", "layers_emptied", "depthwise_channels_emptied", "model",
            "replicate", "control_seed", "data_order_seed", "holdout_top1", "holdout_loss",
            "early_stop_split", "flops_remaining", "dense_flops"}
        assert (table.replicate == 0).all()  # rows without a replicate: one replicate, 0
        assert table.control_seed.isna().all()
        order = [(r.level, -1 if pd.isna(r.rewind_epoch) else int(r.rewind_epoch), r.control)
                 for r in table.itertuples()]
        controls = ["none", "reinit", "random_mask"]
        assert list(table.cell[:2]) == ["dense", "L0-k0-none"]  # the dense run first
        assert order == [(0, -1, "none"), (0, 0, "none")] + [
            (level, rewind, c) for level in (1, 2) for rewind in (0, 1) for c in controls
        ]
        failed = table[table.status == "failed"]
        assert list(failed.cell) == ["L2-k1-random_mask"]
        assert failed.top1.isna().all() and failed.best_epoch.isna().all()
        assert failed.error.iloc[0].endswith("RuntimeError: executor lost")
        assert table.top1.iloc[0] == pytest.approx(0.75)
        dead = table[table.depthwise_channels_emptied > 0]
        assert list(dead.cell) == ["L2-k0-random_mask"]
        assert failed.layers_emptied.isna().all()
    assert str(parquet.level.dtype) == "Int64" and str(parquet.best_epoch.dtype) == "Int64"
    for column in ("layers_emptied", "depthwise_channels_emptied", "replicate", "control_seed"):
        assert str(parquet[column].dtype) == "Int64", column
    # Writes are atomic: no temporary files are left beside the outputs.
    assert not [n for n in os.listdir(root) if n.startswith(".tmp-")]


@pytest.mark.parametrize("name", ["accuracy_vs_weights", "early_stop_vs_weights"])
def test_line_figures_are_real_pngs(run, name: str) -> None:
    data = open(os.path.join(run[0], "figures", f"{name}.png"), "rb").read()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
    image = Image.open(io.BytesIO(data))
    assert image.size == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
    # Drawn, not blank: a plot with lines and text has many distinct colours.
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50


def test_layer_sparsity_figure_has_one_bar_per_prunable_kernel(run) -> None:
    kernels, total = prunable_kernels(_sparsity_csv())
    assert len(kernels) == 53 and "conv_first" not in set(kernels.layer)
    assert total == pytest.approx(0.566)
    data = open(os.path.join(run[0], "figures", "layer_sparsity.png"), "rb").read()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
    height = round(layer_sparsity_height(53) * DPI)
    assert Image.open(io.BytesIO(data)).size == (800, height) and height > 1000


def test_report_markdown(run) -> None:
    root, url = run
    assert url == ArtifactStore(root).url("report.md")
    report = open(os.path.join(root, "report.md"), encoding="utf-8").read()
    assert report.startswith("# Lottery ticket report: ticket-test\n")
    for name in ("accuracy_vs_weights", "accuracy_vs_weights_ci", "early_stop_vs_weights",
                 "layer_sparsity", "accuracy_vs_flops"):
        assert re.search(rf"!\[[^\]]+\]\(figures/{name}\.png\)", report), name
    what = report.split("## What was run", 1)[1].split("\n## ", 1)[0]
    for fact in ("`mobilenet_v2`", "224×224", "6 epochs", "2 levels", "20%", "global",
                 "epoch(s) 0, 1", "reinit, random_mask", "14 models", "13 ok, 1 failed",
                 "the output layer at 10% per level (half the rate, as in Frankle & Carbin)",
                 "every prunable kernel keeps at least 5% of its weights",
                 "and 81.00% of the multiply-adds per image (243.00 of 300.00 M)"):
        assert fact in what, fact
    assert ("| L1-k0-reinit | 1 | 0 | reinit | 0 | 0 | 80.00 | 81.00 | 60.00 | 80.00 | 1.4000 "
            "| 3 | 95.5 | ok | 0 | 0 |") in report
    assert "| dense | 0 | – | none | 0 | 0 | 100.00 | 100.00 | 75.00 | 95.00 |" in report
    assert "| L0-k0-none | 0 | 0 | none | 0 | 0 | 100.00 | 100.00 | 74.00 | 94.00 |" in report
    assert ("| L2-k1-random_mask | 2 | 1 | random_mask | 0 | 0 | 64.00 | 65.00 |  |  |  |  "
            "| 5.0 | failed |  |  |") in report
    assert "val top-1 (%)" in report and not re.search(r"test (accuracy|top)", report.lower())
    failed = report.split("## Failed cells", 1)[1].split("\n## ", 1)[0]
    assert "**L2-k1-random_mask**" in failed and "RuntimeError: executor lost" in failed
    assert "control random_mask, replicate 0, seed 0, status failed" in failed
    summary = report.split("## Summary over replicates", 1)[1].split("\n## ", 1)[0]
    assert "[`summary.csv`](summary.csv)" in summary and "history.parquet" not in summary
    assert ("| L1-k0-reinit | 1 | 0 | reinit | 1 | 0 | 80.00 | 90.00 | 60.00 |  | 60.00 | 60.00 |  "
            "| 80.00 |  | 3.0 |") in summary
    assert "| L2-k1-random_mask | 2 | 1 | random_mask | 0 | 1 |" in summary
    assert "| dense | 123.4 | 0:02:03 |" in report and "| **total** | 436.7 |" in report
    settings = report.split("```yaml\n", 1)[1].split("\n```", 1)[0]
    assert yaml.safe_load(settings) == SETTINGS


def test_findings_state_the_measured_verdicts(run) -> None:
    report = open(os.path.join(run[0], "report.md"), encoding="utf-8").read()
    blocks = _findings(report)
    assert set(blocks) == set(TOP1)
    one = "**inconclusive (fewer than 3 replicates)**"
    alone = "points, one replicate)"
    expected = {
        (1, 0): {"reinit": f"{one} (+10.00 {alone}", "random_mask": f"{one} (+0.20 {alone}"},
        (1, 1): {"reinit": f"{one} (-3.00 {alone}", "random_mask": f"{one} (+1.00 {alone}"},
        (2, 0): {"reinit": f"{one} (+16.00 {alone}", "random_mask": f"{one} (-1.00 {alone}"},
        (2, 1): {"reinit": f"{one} (+13.00 {alone}", "random_mask": "no result (failed)"},
    }
    for key, verdicts in expected.items():
        for control, verdict in verdicts.items():
            line = next(x for x in blocks[key].splitlines() if f"vs `{control}`" in x)
            assert line.endswith(verdict), (key, line)
    # like for like: the level-0 cell of the same rewind epoch, never the dense run
    assert "ticket val top-1 70.00%\n" in blocks[(1, 0)]
    assert (f"  - vs level-0 reference `L0-k0-none` 74.00%: {one} (-4.00 {alone}"
            in blocks[(1, 0)])
    assert "ticket val top-1 66.00%\n  - vs level-0 reference `L0-k0-none` 74.00%" in blocks[(2, 0)]
    for key in ((1, 1), (2, 1)):
        assert "  - no level-0 reference (`L0-k1-none` missing)" in blocks[key], blocks[key]
    findings = report.split("## Findings", 1)[1].split("\n## ", 1)[0]
    assert "dense 75.00%" not in findings and "75.00% (" not in findings
    assert ("Dense training run (source of the rewind points and the level-1 masks): val top-1 "
            "75.00% after 6 epochs.") in findings
    assert "- rewind epoch 0: val top-1 74.00%" in findings
    assert "- rewind epoch 1: no level-0 reference (`L0-k1-none` missing)" in findings
    assert ("Against the controls: 7 comparisons with results; adjusted for multiplicity "
            "(Holm): 0 beat, 0 non-inferior, 0 matched, 0 fell below, 7 inconclusive; each "
            "alone: 0 beat, 0 non-inferior, 0 matched, 0 fell below, 7 inconclusive (7 with "
            "fewer than 3 replicates); 1 had no result.") in findings
    assert "paired t-interval on the per-replicate differences" in findings
    assert "inside ±1 point (the margin)" in findings
    assert "Every comparison rests on fewer than 3 replicates" in findings


def test_layer_figure_is_skipped_without_csv(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path))
    write_report(store, _rows(), SETTINGS, {"grid": 1.0, "total": 2.0}, None)
    assert store.listdir("figures") == ["accuracy_vs_flops.png", "accuracy_vs_weights.png",
                                        "accuracy_vs_weights_ci.png", "early_stop_vs_weights.png"]
    report = store.read_text("report.md")
    assert "_Skipped: no per-epoch history was given_" in report
    assert "figures/layer_sparsity.png" not in report
    assert "_Skipped: no per-layer sparsity table was given_" in report
    assert "| **total** | 2.0 |" in report  # an explicit total wins over the sum


def test_empty_and_odd_rows_still_report(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path))
    write_report(store, [], {}, {}, None)
    assert len(pd.read_parquet(store.url("results.parquet"))) == 0
    assert "No control runs with results" in store.read_text("report.md")
    # Extra keys of mixed types become strings rather than breaking the Parquet write.
    rows = [dict(_row(0, -1, "none", 0.5), note=3), dict(_row(1, 0, "none", 0.4), note="x")]
    frame = results_frame(rows)
    assert list(frame.columns[:len(REQUIRED)]) == REQUIRED and frame.level.tolist() == [0, 1]
    write_report(store, rows, SETTINGS, TIMINGS, None)
    assert pd.read_parquet(store.url("results.parquet")).note.tolist() == ["3", "x"]


def test_layer_figure_reads_a_real_sparsity_report() -> None:
    from pipeline.models import create_model
    from pipeline.tickets import (
        PruningPolicy,
        describe_kernels,
        imp_masks,
        set_masks,
        sparsity_report,
        to_masked,
    )

    model = to_masked(create_model("mobilenet_v2", image_size=32, classes=10, alpha=0.35))
    policy = PruningPolicy(fraction_per_level=0.2)
    set_masks(model, imp_masks(model, policy, 2))
    report = sparsity_report(model, policy)
    kernels, total = prunable_kernels(report.to_csv())
    assert list(kernels.layer) == [t.name for t in describe_kernels(model)
                                   if policy.is_prunable(t)]
    assert total == pytest.approx(report.weights_remaining_prunable)
    png = layer_sparsity(report.to_csv())
    size = Image.open(io.BytesIO(png)).size
    assert size == (800, round(layer_sparsity_height(len(kernels)) * DPI))


def test_dead_structure_is_flagged_in_the_report(run) -> None:
    report = open(os.path.join(run[0], "report.md"), encoding="utf-8").read()
    assert ("| L2-k0-random_mask † | 2 | 0 | random_mask | 0 | 0 | 64.00 | 65.00 | 67.00 | 87.00 "
            "| 1.3300 | 4 | 95.5 | ok | 0 | 2 |") in report
    assert report.count(" † |") == 1  # no other row is marked
    findings = report.split("## Findings", 1)[1].split("\n## ", 1)[0]
    assert "**Dead structure** (marked † in the results table): in 1 model " in findings
    assert "- **L2-k0-random_mask**: 0 layers and 2 depthwise channels emptied" in findings
    assert "†: the mask emptied at least one layer or depthwise channel" in report


def _summary(keep: float, layers: int = 0, channels: int = 0) -> dict:
    return {"weights_remaining_prunable": keep, "weights_remaining_overall": keep,
            "layers_emptied": layers, "depthwise_channels_emptied": channels}


def _history(first: int, last: int, top1: float) -> list[dict]:
    """Epochs first..last, as a cell rewound to first - 1 trains them; lowest loss at last."""
    return [{"epoch": e, "top1": top1, "top5": 0.99, "val_loss": 1.0 / e, "seconds": 1.0}
            for e in range(first, last + 1)]


def _findings_of(rows: list) -> str:
    text = render_report(results_frame(rows), {}, {}, [])
    return text.split("## Findings", 1)[1].split("\n## ", 1)[0]


def test_ticket_is_compared_with_the_level0_cell_of_its_rewind_epoch() -> None:
    rows = [
        ResultRow.dense(0, _history(1, 4, 0.90)),
        ResultRow.ok("L0-k0-none", 0, 0, TICKET, 0, _summary(1.0), _history(1, 4, 0.80), 4.0),
        ResultRow.ok("L0-k2-none", 0, 2, TICKET, 0, _summary(1.0), _history(3, 4, 0.60), 2.0),
        ResultRow.ok("L1-k2-none", 1, 2, TICKET, 0, _summary(0.8), _history(3, 4, 0.65), 2.0),
        ResultRow.ok("L1-k2-reinit", 1, 2, "reinit", 0, _summary(0.8), _history(3, 4, 0.5), 2.0),
        ResultRow.ok("L1-k0-none", 1, 0, TICKET, 0, _summary(0.8, layers=1, channels=3),
                     _history(1, 4, 0.85), 4.0),
        ResultRow.ok("L1-k0-reinit", 1, 0, "reinit", 0, _summary(0.8), _history(1, 4, 0.7), 4.0),
    ]
    frame = results_frame(rows)
    assert list(frame.cell) == ["dense", "L0-k0-none", "L0-k2-none", "L1-k0-none",
                                "L1-k0-reinit", "L1-k2-none", "L1-k2-reinit"]
    assert frame.set_index("cell").best_epoch["L1-k2-none"] == 4  # the dense run's numbering
    findings = _findings_of(rows)
    one = "**inconclusive (fewer than 3 replicates)**"
    assert ("val top-1 65.00%\n  - vs level-0 reference `L0-k2-none` 60.00%: "
            f"{one} (+5.00 points, one replicate)") in findings
    assert ("val top-1 85.00%\n  - vs level-0 reference `L0-k0-none` 80.00%: "
            f"{one} (+5.00 points, one replicate)") in findings
    assert "90.00% (" not in findings  # never against the dense run
    assert ("Dense training run (source of the rewind points and the level-1 masks): val "
            "top-1 90.00% after 4 epochs.") in findings
    assert "- **L1-k0-none**: 1 layer and 3 depthwise channels emptied" in findings
    table = results_markdown(frame)
    assert "| L1-k0-none † | 1 | 0 | none |" in table and "| L1-k0-reinit | 1 |" in table


def test_missing_or_failed_reference_is_said_not_replaced() -> None:
    dense = ResultRow.dense(0, _history(1, 3, 0.90))
    ticket = ResultRow.ok("L1-k1-none", 1, 1, TICKET, 0, _summary(0.5), _history(2, 3, 0.7), 1.0)
    control = ResultRow.ok("L1-k1-reinit", 1, 1, "reinit", 0, _summary(0.5),
                           _history(2, 3, 0.6), 1.0)
    failed = ResultRow.failed("L0-k1-none", 0, 1, TICKET, 0, "out of memory")
    findings = _findings_of([dense, ticket, control, failed])
    assert ("ticket val top-1 70.00%\n  - vs level-0 reference `L0-k1-none`: no result "
            "(failed)") in findings
    assert "- rewind epoch 1: no level-0 reference (`L0-k1-none` failed)" in findings
    findings = _findings_of([dense, ticket, control])
    assert "ticket val top-1 70.00%\n  - no level-0 reference (`L0-k1-none` missing)" in findings
    assert "90.00% (" not in findings


def test_accuracy_figure_draws_references_dense_run_and_dead_structure() -> None:
    rows = [_row(0, None, "none", 0.75), _row(0, 0, "none", 0.74)]
    rows += [_row(level, 0, c, top1) for (level, k), by in TOP1.items() if k == 0
             for c, top1 in by.items()]
    rows[-1]["layers_emptied"] = 1
    fig = line_figure(results_frame(rows), "top1", "top-1 val accuracy (%)", "t", y_scale=100.0,
                      dense_format="{:.2f}%")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "level 0, rewind to epoch 0 (74.00%)" in labels
    assert "dense training run (75.00%)" in labels
    assert "layer or depthwise channel emptied" in labels
    ax = fig.axes[0]
    flat = [line for line in ax.get_lines()
            if len(set(line.get_ydata())) == 1 and line.get_linestyle() == ":"]
    assert not flat  # the dense run is a marker, not a dotted baseline
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1 and list(stars[0].get_ydata()) == [pytest.approx(75.0)]


def test_real_masks_with_dead_structure_are_flagged() -> None:
    from pipeline.tickets import ones_masks, set_masks, sparsity_report, to_masked
    from tests.support.digits_nets import tiny_mixed_net

    model = to_masked(tiny_mixed_net())
    masks = ones_masks(model)
    masks["conv"][:] = False  # a whole layer
    masks["dw"][:, :, 4, :] = False  # one depthwise channel
    set_masks(model, masks)
    summary = sparsity_report(model).summary()
    row = ResultRow.ok("L3-k0-none", 3, 0, TICKET, 0, summary, _history(1, 2, 0.5), 1.0)
    assert (row.layers_emptied, row.depthwise_channels_emptied) == (1, 1)
    table = results_markdown(results_frame([row]))
    assert table.splitlines()[-1].startswith("| L3-k0-none † | 3 | 0 | none |")
    assert table.splitlines()[-1].endswith("| ok | 1 | 1 |")


def test_tickets_without_controls_still_meet_their_reference() -> None:
    rows = [
        ResultRow.dense(0, _history(1, 3, 0.90)),
        ResultRow.ok("L0-k0-none", 0, 0, TICKET, 0, _summary(1.0), _history(1, 3, 0.8), 1.0),
        ResultRow.ok("L1-k0-none", 1, 0, TICKET, 0, _summary(0.5), _history(1, 3, 0.7), 1.0),
    ]
    findings = _findings_of(rows)
    assert "No control runs with results to compare against" in findings
    assert ("- **Level 1** (50.00% of prunable weights remaining), rewind epoch 0: ticket val "
            "top-1 70.00%\n  - vs level-0 reference `L0-k0-none` 80.00%: **inconclusive (fewer "
            "than 3 replicates)** (-10.00 points, one replicate)") in findings


def test_dead_structure_names_the_replicate_only_for_replicates() -> None:
    dead = _summary(0.5, channels=4)
    rows = [ResultRow.ok("L1-k0-none", 1, 0, TICKET, seed, dead, _history(1, 2, 0.5), 1.0,
                         replicate=replicate) for replicate, seed in ((0, 10), (1, 11))]
    rows.append(ResultRow.ok("L1-k0-reinit", 1, 0, "reinit", 10, dead, _history(1, 2, 0.4), 1.0,
                             control_seed=77))
    findings = _findings_of(rows)
    assert ("- **L1-k0-none** (replicate 0, seed 10): 0 layers and 4 depthwise channels "
            "emptied") in findings
    assert "- **L1-k0-none** (replicate 1, seed 11): 0 layers" in findings
    assert "- **L1-k0-reinit**: 0 layers and 4 depthwise channels emptied" in findings
