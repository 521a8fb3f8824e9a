"""Resuming: a rerun repeats no finished work, retrains what is missing, repairs corruption."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from pipeline.experiment.cells import Cell
from pipeline.experiment.dense_stage import run_dense_stage
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.preflight import preflight
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.run_layout import RunLayout
from pipeline.store import ArtifactStore
from pipeline.train.checkpoints import load_checkpoint
from tests.support.job_settings import tiny_settings

CELLS = [Cell(0, k) for k in (0, 1)] + [
    Cell(1, k, c) for k in (0, 1) for c in ("none", "reinit", "random_mask")]
ROWS = 1 + len(CELLS)  # the dense run and every cell


def _mtimes(root, pattern):
    return {p.relative_to(root): p.stat().st_mtime_ns for p in sorted(root.glob(pattern))}


@pytest.fixture(scope="module")
def settings(sample_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume")
    return tiny_settings(sample_dataset, str(out), "model.name=lenet_300_100", "prune.levels=1")


@pytest.fixture(scope="module")
def run_root(settings):
    from pathlib import Path

    return Path(ArtifactStore(RunDirectory(settings).url).path())


def test_dense_only_then_full_run_does_not_retrain_dense(spark, settings, run_root):
    run = RunDirectory(settings, replicate=0)
    run_dense_stage(spark, run, preflight(settings))  # "killed" right after the dense stage
    assert run.is_done("dense") and not run.store.exists("grid")
    dense_files = _mtimes(run_root, "replicate-0/dense/*")
    assert len(dense_files) == 2 * 3 + 2 * 2 + 1  # epochs 0-2 (+json), 2 optimizer states, marker

    outcome = run_prune_job(settings, spark=spark)
    assert _mtimes(run_root, "replicate-0/dense/*") == dense_files
    assert [r["status"] for r in outcome.rows] == ["ok"] * ROWS


def test_rerun_trains_only_the_missing_cell(spark, settings, run_root):
    before = _mtimes(run_root, "replicate-0/grid/L*/k*/*/result.json")
    assert len(before) == len(CELLS)
    lost = Cell(1, 1, "reinit")  # as if the driver died while this cell was training
    RunDirectory(settings, replicate=0).store.delete(*RunLayout.cell_result(lost))

    outcome = run_prune_job(settings, spark=spark)
    after = _mtimes(run_root, "replicate-0/grid/L*/k*/*/result.json")
    changed = {str(p) for p in after if after[p] != before.get(p)}
    assert changed == {"/".join(("replicate-0", *RunLayout.cell_result(lost)))}
    table = pd.read_csv(run_root / "results.csv")
    assert len(table) == ROWS and (table["status"] == "ok").all()
    assert outcome.rows[0]["cell"] == "dense"


def test_corrupt_checkpoint_is_detected_and_recomputed(spark, settings, run_root, caplog):
    target = run_root / "replicate-0" / "dense" / "epoch-001.npz"
    target.write_bytes(target.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING):
        run_prune_job(settings, spark=spark)
    assert any("epoch-001.npz is corrupt" in r.getMessage() for r in caplog.records)
    store = ArtifactStore(RunDirectory(settings, replicate=0).url)
    load_checkpoint(store.child("dense"), "epoch-001")  # rewritten and valid
    assert list((run_root / "replicate-0" / "superseded").glob("*/grid/L1/k0/none/result.json"))
    table = pd.read_csv(run_root / "results.csv")
    assert len(table) == ROWS and (table["status"] == "ok").all()
