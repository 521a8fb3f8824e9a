"""The stability stage of the main job: two copies per rewind point, the path between them
as Spark tasks, stability.parquet / stability.json and the report's section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ConfigError
from pipeline.experiment.cells import Cell
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.preflight import PreflightError
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.stability_stage import STABILITY_JSON, STABILITY_PARQUET
from pipeline.report.instability import instability
from pipeline.store import ArtifactStore
from tests.support.job_settings import tiny_settings

ALPHAS = 5
EPOCHS = [0, 1]
OVERRIDES = ("prune.levels=1", "rewind.epochs=[0, 1]", "grid.controls=[]",
             "run.deterministic=true", "stability.enabled=true", f"stability.alphas={ALPHAS}",
             "stability.subjects=[dense, tickets]", "stability.batchnorm=interpolate",
             "stability.train_images=64")


@pytest.fixture(scope="module")
def stable_run(spark, sample_dataset, tmp_path_factory):
    settings = tiny_settings(sample_dataset, str(tmp_path_factory.mktemp("stability")),
                             *OVERRIDES)
    return settings, run_prune_job(settings, spark=spark)


def _rep(settings) -> RunDirectory:  # noqa: ANN001
    return RunDirectory(settings, replicate=0)


def test_every_path_point_is_a_row(stable_run):
    settings, outcome = stable_run
    table = pd.read_parquet(ArtifactStore(outcome.run_url).path(STABILITY_PARQUET))
    # 2 subjects (dense L0, the L1 ticket) x 2 rewind points x 5 points x 2 splits
    assert len(table) == 2 * len(EPOCHS) * ALPHAS * 2
    assert set(table["subject"]) == {"dense", "tickets"}
    assert set(zip(table["subject"], table["level"], strict=True)) == {("dense", 0),
                                                                       ("tickets", 1)}
    assert sorted(set(table["alpha"])) == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert table["top1"].between(0, 1).all() and (table["loss"] > 0).all()
    # the grid's table holds no copy
    assert not [r for r in outcome.rows if "copy" in r["cell"]]


def test_the_ends_are_the_copies_own_evaluations(stable_run):
    """batchnorm=interpolate: alpha 0 and 1 are each copy's trained network, bit for bit."""
    settings, outcome = stable_run
    rep = _rep(settings)
    table = pd.read_parquet(ArtifactStore(outcome.run_url).path(STABILITY_PARQUET))
    val = table[table["split"] == "val"]
    for level in (0, 1):
        for k in EPOCHS:
            path = val[(val["level"] == level) & (val["k"] == k)].sort_values("alpha")
            for copy, end in ((0, path.iloc[0]), (1, path.iloc[-1])):
                row = rep.store.read_json(*rep.cell_result(Cell(level, k, copy=copy)))
                assert row["status"] == "ok"
                assert end["top1"] == row["top1"], (level, k, copy)


def test_each_copy_trains_on_its_own_data_order(stable_run):
    settings, _ = stable_run
    rep = _rep(settings)
    seeds = {rep.store.read_json(*rep.cell_result(Cell(0, 1, copy=c)))["data_order_seed"]
             for c in (0, 1)}
    grid = rep.store.read_json(*rep.cell_result(Cell(0, 1)))["data_order_seed"]
    assert len(seeds) == 2 and grid not in seeds


def test_one_replicate_recommends_nothing_and_the_report_says_why(stable_run):
    _, outcome = stable_run
    store = ArtifactStore(outcome.run_url)
    record = json.loads(store.read_text(STABILITY_JSON))
    assert record["recommended_rewind_epoch"] is None
    assert "no rewind point is stable" in record["reason"]
    assert record["batchnorm"] == "interpolate" and record["alphas"] == ALPHAS
    assert {(r["subject"], r["level"], r["k"], r["split"]) for r in record["instability"]} == {
        (s, level, k, split) for s, level in (("dense", 0), ("tickets", 1)) for k in EPOCHS
        for split in ("val", "train")}
    assert all(r["n"] == 1 and not r["stable"] for r in record["instability"])
    report = store.read_text("report.md")
    assert "## Stability" in report and "Recommended rewind point: none" in report
    assert "stability" in outcome.timings
    for figure in ("figures/stability_path.png", "figures/instability_vs_k.png"):
        assert store.read_bytes(*figure.split("/"))[:4] == b"\x89PNG" and figure in report


def test_copies_on_one_data_order_have_no_barrier(stable_run, tmp_path: Path):
    """Both copies retrained here on copy 0's order are one network (a deterministic run in
    one process): the path is flat, its instability exactly 0."""
    import dataclasses
    import shutil

    from pipeline.experiment.cell_run import train_in_task
    from pipeline.experiment.dense_stage import model_spec
    from pipeline.experiment.mask_stage import policy_for
    from pipeline.experiment.preflight import preflight
    from pipeline.experiment.run_layout import RunLayout
    from pipeline.experiment.stability_stage import PathChunk, copy_context, evaluate_chunk
    from pipeline.train.checkpoints import load_checkpoint
    from pipeline.train.interpolation import alphas

    settings, _ = stable_run
    rep = _rep(settings)
    copy = tmp_path / "run"
    shutil.copytree(rep.url.removeprefix("file://"), copy)
    layout = RunLayout(str(copy))
    for c in (0, 1):
        layout.store.delete(*layout.cell_result(Cell(0, 1, copy=c)))
    facts = preflight(settings)
    workers = int(rep.store.read_json("dense", "_COMPLETE")["workers"])
    ctx = dataclasses.replace(
        rep.to_remote(facts, model_spec(rep, facts), workers, policy_for(rep).to_dict()),
        layout=layout)
    first = copy_context(ctx, Cell(0, 1, copy=0))
    for c in (0, 1):  # each copy's place, copy 0's order
        assert train_in_task(first, Cell(0, 1, copy=c))["status"] == "ok"
    rows = evaluate_chunk(PathChunk("dense", 0, 1, tuple(alphas(ALPHAS))), ctx, "interpolate",
                          1, 0, 128)
    errors = [1 - r["top1"] for r in rows]
    assert len(errors) == ALPHAS and instability(errors) == 0.0
    ends = [load_checkpoint(layout.cell_dir(Cell(0, 1, copy=c)), layout.CELL_WEIGHTS)
            for c in (0, 1)]
    for a, b in zip(*ends, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_rerun_evaluates_nothing_again(stable_run, spark):
    settings, outcome = stable_run
    rep = _rep(settings)
    path = Path(rep.store.path(*rep.stability_path(1, 0)))
    before = path.stat().st_mtime_ns
    again = run_prune_job(settings, spark=spark)
    assert path.stat().st_mtime_ns == before
    assert len(pd.read_parquet(ArtifactStore(again.run_url).path(STABILITY_PARQUET))) == \
        2 * len(EPOCHS) * ALPHAS * 2


@pytest.mark.parametrize(("overrides", "message"), [
    (["stability.epochs=[2]"], "stability.epochs: 2 is outside the dense training"),
    (["stability.subjects=[tickets]", "stability.epochs=[0]", "rewind.epochs=[1]"],
     "tickets exist only at rewind.epochs"),
    (["stability.subjects=[tickets]", "stability.levels=[3]"], "above prune.levels"),
])
def test_bad_stability_settings_fail_in_preflight(sample_dataset, tmp_path, overrides, message):
    settings = tiny_settings(sample_dataset, str(tmp_path), "stability.enabled=true",
                             *overrides)
    with pytest.raises(PreflightError, match=message):
        run_prune_job(settings)


def test_bad_stability_values_name_the_key(sample_dataset, tmp_path):
    with pytest.raises(ConfigError, match="stability.subjects"):
        tiny_settings(sample_dataset, str(tmp_path), "stability.subjects=[sparse]")
    with pytest.raises(ConfigError, match="stability.alphas"):
        tiny_settings(sample_dataset, str(tmp_path), "stability.alphas=1")
