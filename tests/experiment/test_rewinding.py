"""Rewinding as the literature defines it, and one training procedure for every model.

A cell rewound to epoch k continues the dense run from step k·S to T·S with the schedule
at step k·S; the level-0 cell (the unpruned network, rewound and retrained by the cells'
code) retraces the dense stage when it starts from the dense state.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.experiment.cells import Cell
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.run_layout import RunLayout
from pipeline.train.checkpoints import load_checkpoint
from pipeline.train.optimizers import make_schedule
from tests.support.job_settings import tiny_settings

EPOCHS = 4
BATCH = 32
# Deterministic runs on one machine agree to the last bit; 1e-5 leaves room for summation
# order on other hardware.
ATOL = 1e-5


def _steps_per_epoch(run_url: str, train_images: int) -> int:
    workers = int(RunLayout(run_url).replicate(0).store.read_json("dense", "_COMPLETE")[
        "workers"])
    return train_images // (workers * BATCH)


def _assert_same_weights(run_url: str, cell: Cell) -> None:
    run = RunLayout(run_url).replicate(0)
    dense = load_checkpoint(run.dense_dir(), run.dense_weights(EPOCHS))
    trained = load_checkpoint(run.cell_dir(cell), run.CELL_WEIGHTS)
    assert len(dense) == len(trained)
    for d, t in zip(dense, trained, strict=True):
        np.testing.assert_allclose(t, d, rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def task_run(spark, sample_dataset, tmp_path_factory):
    settings = tiny_settings(
        sample_dataset, str(tmp_path_factory.mktemp("rewind_task")), f"train.epochs={EPOCHS}",
        f"train.batch_size={BATCH}", "prune.levels=1", "rewind.epochs=[0, 2]",
        "grid.controls=[]",
    )
    return settings, run_prune_job(settings, spark=spark)


def test_grid_has_a_level_zero_reference_for_every_rewind_point(task_run):
    _, outcome = task_run
    assert [r["cell"] for r in outcome.rows] == [
        "dense", "L0-k0-none", "L0-k2-none", "L1-k0-none", "L1-k2-none"]
    assert all(r["status"] == "ok" for r in outcome.rows), outcome.rows
    references = [r for r in outcome.rows if r["cell"].startswith("L0-")]
    assert all(r["weights_remaining_prunable"] == 1.0 for r in references)


def test_a_late_reset_cell_continues_the_dense_schedule(task_run, sample_dataset):
    settings, outcome = task_run
    facts_rows = 300  # the sample's train split
    steps = _steps_per_epoch(outcome.run_url, facts_rows)
    replicate = RunDirectory(settings, replicate=0)
    histories = replicate.store.read_json(*replicate.histories())
    cells = [r["cell"] for r in outcome.rows if r["cell"] != "dense"]
    history = dict(zip(cells, histories, strict=True))["L1-k2-none"]
    row = next(r for r in outcome.rows if r["cell"] == "L1-k2-none")
    assert [h["epoch"] for h in history] == [3, 4]
    assert row["epochs"] == 2
    # exactly (T - k)·S optimizer steps, starting at step k·S
    assert history[0]["first_step"] == 2 * steps
    assert history[-1]["last_step"] == EPOCHS * steps
    schedule = make_schedule(settings.train, steps)
    assert history[0]["learning_rate"] == pytest.approx(float(schedule(2 * steps)), rel=1e-6)
    assert history[0]["learning_rate"] < 0.9 * float(schedule(0))  # not restarted at the peak
    k0 = dict(zip(cells, histories, strict=True))["L1-k0-none"]
    assert [h["epoch"] for h in k0] == [1, 2, 3, 4] and k0[0]["first_step"] == 0


def test_level_zero_from_the_initialization_retraces_the_dense_run(task_run):
    # rewind.optimizer=reset at k = 0 is the dense run's own starting state
    _, outcome = task_run
    _assert_same_weights(outcome.run_url, Cell(0, 0))


def test_data_parallel_level_zero_reproduces_the_dense_epochs(spark, sample_dataset, tmp_path):
    settings = tiny_settings(
        sample_dataset, str(tmp_path), f"train.epochs={EPOCHS}", f"train.batch_size={BATCH}",
        "prune.levels=1", "rewind.epochs=[2]", "rewind.optimizer=restore",
        "grid.controls=[]", "grid.mode=data_parallel",
    )
    outcome = run_prune_job(settings, spark=spark)
    assert all(r["status"] == "ok" for r in outcome.rows), outcome.rows
    _assert_same_weights(outcome.run_url, Cell(0, 2))
