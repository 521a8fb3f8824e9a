"""Rewinding as the literature defines it, and one training procedure for every model.

A cell rewound to epoch k continues the dense run from step k·S to T·S with the schedule
at step k·S; the level-0 cell (the unpruned network, rewound and retrained by the cells'
code) retraces the dense stage when it starts from the dense state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def _workers(run_url: str) -> int:
    return int(RunLayout(run_url).replicate(0).store.read_json("dense", "_COMPLETE")["workers"])


def _steps_per_epoch(run_url: str, train_images: int) -> int:
    return train_images // (_workers(run_url) * BATCH)


def _assert_same_weights(run_url: str, cell: Cell) -> None:
    run = RunLayout(run_url).replicate(0)
    dense = load_checkpoint(run.dense_dir(), run.dense_weights(EPOCHS))
    trained = load_checkpoint(run.cell_dir(cell), run.CELL_WEIGHTS)
    assert len(dense) == len(trained)
    for d, t in zip(dense, trained, strict=True):
        np.testing.assert_allclose(t, d, rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def task_run(spark, sample_dataset, tmp_path_factory):
    # replay: the cells take the dense run's batches, so level 0 can retrace it
    settings = tiny_settings(
        sample_dataset, str(tmp_path_factory.mktemp("rewind_task")), f"train.epochs={EPOCHS}",
        f"train.batch_size={BATCH}", "prune.levels=1", "rewind.epochs=[0, 2]",
        "grid.controls=[]", "grid.data_order=replay",
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


def test_data_parallel_level_zero_reproduces_the_dense_epochs(spark, task_run, tmp_path):
    task_settings, _ = task_run
    settings = tiny_settings(
        task_settings.data.url, str(tmp_path), f"train.epochs={EPOCHS}",
        f"train.batch_size={BATCH}", "prune.levels=1", "rewind.epochs=[2]",
        "rewind.optimizer=restore", "grid.controls=[]", "grid.mode=data_parallel",
        "grid.data_order=replay",
    )
    # The dense stage is the task-mode run's (same data, procedure and seed): this run
    # resumes it as finished and trains only the grid, in data-parallel mode.
    dense = Path(RunDirectory(task_settings, replicate=0).dense_dir().root.removeprefix("file://"))
    copy = Path(RunDirectory(settings, replicate=0).dense_dir().root.removeprefix("file://"))
    shutil.copytree(dense, copy)
    final = copy / f"{RunLayout.dense_weights(EPOCHS)}.npz"
    copied = final.stat().st_mtime_ns
    outcome = run_prune_job(settings, spark=spark)
    assert final.stat().st_mtime_ns == copied, "the dense stage was trained again"
    assert all(r["status"] == "ok" for r in outcome.rows), outcome.rows
    _assert_same_weights(outcome.run_url, Cell(0, 2))


@contextmanager
def _recorded_batches() -> Iterator[list[list[str]]]:
    """Every training batch of this process while open, as its images' digests in order:
    the rows of indices the compiled pass gathers its batches by, read as it is called."""
    from pipeline.train import local_sgd

    batches: list[list[str]] = []
    original = local_sgd.compiled_pass

    def recording(model, x, y):  # noqa: ANN001, ANN202
        run = original(model, x, y)

        def recorded(x, y, rows):  # noqa: ANN001, ANN202
            images = np.asarray(x)
            for row in np.asarray(rows):
                batches.append([hashlib.sha1(np.ascontiguousarray(images[i]).tobytes())
                                .hexdigest() for i in row])
            return run(x, y, rows)

        return recorded

    local_sgd.compiled_pass = recording
    try:
        yield batches
    finally:
        local_sgd.compiled_pass = original


def _context(settings, outcome, tmp_path, data_order: str):  # noqa: ANN001, ANN202
    """The replicate's cell context on a copy of the run, under ``data_order``."""
    from pipeline.experiment.dense_stage import model_spec
    from pipeline.experiment.mask_stage import policy_for
    from pipeline.experiment.preflight import preflight

    rep = RunDirectory(settings, replicate=0)
    copy = tmp_path / data_order
    shutil.copytree(rep.url.removeprefix("file://"), copy)
    facts = preflight(settings)
    workers = int(rep.store.read_json("dense", "_COMPLETE")["workers"])
    ctx = rep.to_remote(facts, model_spec(rep, facts), workers, policy_for(rep).to_dict())
    return dataclasses.replace(ctx, layout=RunLayout(str(copy)), data_order=data_order)


def test_every_arm_of_a_replicate_trains_on_one_batch_order(task_run, tmp_path):
    from pipeline.data.dataset import DatasetSplit
    from pipeline.experiment.cell_run import train_in_task
    from pipeline.train.in_process import InProcessRounds, compiled_model

    settings, outcome = task_run
    # rewound to epoch 2 of 4: two epochs of batches per arm (the order does not depend
    # on the rewind point; see the dense comparison below)
    arms = [Cell(1, 2), Cell(1, 2, "reinit"), Cell(1, 2, "random_mask"), Cell(0, 2)]
    seen = {}
    for order in ("fresh", "replay"):
        ctx = _context(settings, outcome, tmp_path, order)
        for cell in arms:
            with _recorded_batches() as batches:
                row = train_in_task(ctx, cell)
            assert row["status"] == "ok" and row["data_order_seed"] == ctx.data_order_seed
            seen[order, cell.name] = batches
    fresh = seen["fresh", "L1-k2-none"]
    # epochs 3 and 4, each one batch per replica per step
    assert len(fresh) == 2 * _workers(outcome.run_url) * _steps_per_epoch(outcome.run_url, 300)
    for cell in arms[1:]:  # the same image ids in the same order, batch by batch
        assert seen["fresh", cell.name] == fresh, cell.name
        assert seen["replay", cell.name] == seen["replay", "L1-k2-none"], cell.name
    # the dense run's own order, as its procedure draws it (run seed)
    ctx = _context(settings, outcome, tmp_path / "dense", "replay")
    procedure = ctx.procedure()
    assert procedure.seed == ctx.run_seed
    model, optimizer = compiled_model(ctx.spec, ctx.train, procedure.steps_per_epoch)
    trainer = InProcessRounds(model, optimizer, procedure)
    with _recorded_batches() as dense:
        for epoch in (3, 4):  # the epochs a cell rewound to 2 trains
            trainer.train_epoch(DatasetSplit.of(ctx.train_url).row_groups(), epoch)
    assert seen["replay", "L1-k2-none"] == dense
    assert fresh != dense and sorted(map(sorted, fresh)) != sorted(map(sorted, dense))
