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
    prunable_kernels,
)
from pipeline.report.table import results_frame
from pipeline.store import ArtifactStore

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
              "prunable": ["conv", "depthwise", "dense"], "first_conv_fraction": None},
    "rewind": {"epochs": [0, 1]},
    "grid": {"controls": ["reinit", "random_mask"], "mode": "task"},
}
TIMINGS = {"dense": 123.4, "masks": 2.1, "grid": 300.0, "evaluate": 10.0, "report": 1.2}


def _row(level: int, rewind: int | None, control: str, top1: float) -> dict:
    failed = math.isnan(top1)
    keep = 0.8**level
    return {
        "cell": "dense" if level == 0 else f"L{level}-k{rewind}-{control}",
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
        "epochs": 6,
        "model": "mobilenet_v2",
    }


def _rows() -> list[dict]:
    rows = [_row(0, None, "none", 0.75)]
    for (level, rewind), by_control in TOP1.items():
        rows += [_row(level, rewind, c, top1) for c, top1 in by_control.items()]
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
        assert len(table) == 1 + 4 * 3
        assert list(table.columns[: len(REQUIRED)]) == REQUIRED
        assert set(table.columns[len(REQUIRED):]) == {"cell", "error", "epochs", "model"}
        order = [(r.level, -1 if pd.isna(r.rewind_epoch) else int(r.rewind_epoch), r.control)
                 for r in table.itertuples()]
        controls = ["none", "reinit", "random_mask"]
        assert order == [(0, -1, "none")] + [
            (level, rewind, c) for level in (1, 2) for rewind in (0, 1) for c in controls
        ]
        failed = table[table.status == "failed"]
        assert list(failed.cell) == ["L2-k1-random_mask"]
        assert failed.top1.isna().all() and failed.best_epoch.isna().all()
        assert failed.error.iloc[0].endswith("RuntimeError: executor lost")
        assert table.top1.iloc[0] == pytest.approx(0.75)
    assert str(parquet.level.dtype) == "Int64" and str(parquet.best_epoch.dtype) == "Int64"
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
    for name in ("accuracy_vs_weights", "early_stop_vs_weights", "layer_sparsity"):
        assert re.search(rf"!\[[^\]]+\]\(figures/{name}\.png\)", report), name
    what = report.split("## What was run", 1)[1].split("\n## ", 1)[0]
    for fact in ("`mobilenet_v2`", "224×224", "6 epochs", "2 levels", "20%", "global",
                 "epoch(s) 0, 1", "reinit, random_mask", "13 models", "12 ok, 1 failed"):
        assert fact in what, fact
    assert ("| L1-k0-reinit | 1 | 0 | reinit | 0 | 80.00 | 81.00 | 60.00 | 80.00 | 1.4000 "
            "| 3 | 95.5 | ok |") in report
    assert "| dense | 0 | – | none | 0 | 100.00 | 100.00 | 75.00 | 95.00 |" in report
    assert "| L2-k1-random_mask | 2 | 1 | random_mask | 0 | 64.00 | 65.00 |  |  |  |  |" in report
    failed = report.split("## Failed cells", 1)[1].split("\n## ", 1)[0]
    assert "**L2-k1-random_mask**" in failed and "RuntimeError: executor lost" in failed
    assert "| dense | 123.4 | 0:02:03 |" in report and "| **total** | 436.7 |" in report
    settings = report.split("```yaml\n", 1)[1].split("\n```", 1)[0]
    assert yaml.safe_load(settings) == SETTINGS


def test_findings_state_the_measured_verdicts(run) -> None:
    report = open(os.path.join(run[0], "report.md"), encoding="utf-8").read()
    blocks = _findings(report)
    assert set(blocks) == set(TOP1)
    expected = {
        (1, 0): {"reinit": "**beat** (+10.00 points)",
                 "random_mask": "**tied (within 0.5 points)** (+0.20 points)"},
        (1, 1): {"reinit": "**did not beat** (-3.00 points)",
                 "random_mask": "**beat** (+1.00 points)"},
        (2, 0): {"reinit": "**beat** (+16.00 points)",
                 "random_mask": "**did not beat** (-1.00 points)"},
        (2, 1): {"reinit": "**beat** (+13.00 points)", "random_mask": "no result (failed)"},
    }
    for key, verdicts in expected.items():
        for control, verdict in verdicts.items():
            line = next(x for x in blocks[key].splitlines() if f"vs `{control}`" in x)
            assert line.endswith(verdict), (key, line)
    assert "ticket top-1 70.00%; dense 75.00% (-5.00 points)" in blocks[(1, 0)]
    assert ("ticket beat the control 4 times, tied 1 times and did not beat it 2 times; "
            "1 had no result") in report


def test_layer_figure_is_skipped_without_csv(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path))
    write_report(store, _rows(), SETTINGS, {"grid": 1.0, "total": 2.0}, None)
    assert store.listdir("figures") == ["accuracy_vs_weights.png", "early_stop_vs_weights.png"]
    report = store.read_text("report.md")
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
