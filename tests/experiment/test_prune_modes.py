"""The other ways to run the grid: Elephas per cell (data_parallel) and one-shot pruning."""

from __future__ import annotations

import numpy as np

from pipeline.experiment.cells import Cell
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_layout import RunLayout
from pipeline.store import ArtifactStore
from pipeline.tickets import masks_from_bytes
from pipeline.train.checkpoints import load_checkpoint
from tests.support.job_settings import tiny_settings


def test_data_parallel_cells_keep_exact_zeros(spark, sample_dataset, tmp_path):
    settings = tiny_settings(
        sample_dataset, str(tmp_path), "model.name=lenet_300_100", "prune.levels=1",
        "rewind.epochs=[1]", "grid.controls=[reinit]", "grid.mode=data_parallel",
    )
    outcome = run_prune_job(settings, spark=spark)
    assert [r["cell"] for r in outcome.rows] == ["dense", "L0-k1-none", "L1-k1-none",
                                                 "L1-k1-reinit"]
    assert all(r["status"] == "ok" for r in outcome.rows), outcome.rows
    run = RunLayout(outcome.run_url).replicate(0)
    for cell in (Cell(1, 1), Cell(1, 1, "reinit")):
        weights = load_checkpoint(run.cell_dir(cell), "weights")
        masks = masks_from_bytes(run.cell_dir(cell).read_bytes("masks.npz"))
        kernels = {"fc1": 0, "fc2": 2, "predictions": 4}  # lenet's plain weight order
        for name, index in kernels.items():
            assert weights[index].shape == masks[name].shape
            assert np.all(weights[index][~masks[name]] == 0.0), (cell.name, name)
            assert np.count_nonzero(weights[index]) > 0


def test_one_shot_prunes_every_level_from_the_dense_weights(spark, sample_dataset, tmp_path):
    settings = tiny_settings(
        sample_dataset, str(tmp_path), "model.name=lenet_300_100", "prune.method=oneshot",
        "rewind.epochs=[0]", "grid.controls=[]",
    )
    outcome = run_prune_job(settings, spark=spark)
    rows = {r["cell"]: r for r in outcome.rows}
    assert set(rows) == {"dense", "L0-k0-none", "L1-k0-none", "L2-k0-none"}
    np.testing.assert_allclose(rows["L2-k0-none"]["weights_remaining_prunable"], 0.25,
                               atol=1e-5)
    run = ArtifactStore(RunLayout(outcome.run_url).replicate(0).url)
    # one-shot level 2 ranks the dense weights: it need not nest inside level 1's mask,
    # and its masks exist before any level-1 cell finished (one wave)
    l1 = masks_from_bytes(run.read_bytes(*RunLayout.masks(1, 0)))
    l2 = masks_from_bytes(run.read_bytes(*RunLayout.masks(2, 0)))
    dense = load_checkpoint(run.child("dense"), "epoch-002")
    kernels = {"fc1": 0, "fc2": 2, "predictions": 4}
    kept = np.concatenate([np.abs(dense[i])[l2[n]] for n, i in kernels.items()])
    pruned = np.concatenate([np.abs(dense[i])[~l2[n]] for n, i in kernels.items()])
    assert kept.min() >= pruned.max()  # one global magnitude threshold over the dense weights
    assert sum(int(m.sum()) for m in l2.values()) < sum(int(m.sum()) for m in l1.values())


def test_micro_batches_give_the_whole_batch_run(spark, sample_dataset, tmp_path):
    """LeNet has no BatchNorm, so 4 accumulated passes of 8 are a step of 32: the dense
    rounds (Elephas) and a cell (in its task) end where whole batches do, to float32
    rounding, in a run directory of their own."""
    runs = {}
    for micro in (0, 8):
        settings = tiny_settings(
            sample_dataset, str(tmp_path), "model.name=lenet_300_100", "prune.levels=1",
            "rewind.epochs=[1]", "grid.controls=[]", f"train.micro_batch_size={micro}")
        outcome = run_prune_job(settings, spark=spark)
        assert all(r["status"] == "ok" for r in outcome.rows), outcome.rows
        runs[micro] = RunLayout(outcome.run_url)
    assert runs[0].url != runs[8].url
    whole, micro = (runs[m].replicate(0) for m in (0, 8))
    for read in (lambda r: load_checkpoint(ArtifactStore(r.url).child("dense"), "epoch-002"),
                 lambda r: load_checkpoint(r.cell_dir(Cell(1, 1)), "weights")):
        for got, want in zip(read(micro), read(whole), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
