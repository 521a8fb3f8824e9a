"""RunLayout: the only place that spells paths below a run directory."""

from __future__ import annotations

import pickle

from pipeline.experiment.cells import Cell
from pipeline.experiment.preflight import DatasetFacts
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.run_layout import RunLayout
from pipeline.models.spec import ModelSpec
from pipeline.seeding import replicate_seed
from pipeline.tickets.masked_spec import MaskedSpec
from tests.support.job_settings import tiny_settings


def test_paths_of_one_run(tmp_path):
    layout = RunLayout(f"file://{tmp_path}/run-abc")
    assert layout.masks(2, 1) == ("masks", "L2-k1.npz")
    assert layout.cell_result(Cell(1, 0, "reinit")) == ("grid", "L1", "k0", "reinit",
                                                         "result.json")
    assert layout.cell_dir(Cell(1, 0)).root.endswith("/run-abc/grid/L1/k0/none")
    assert layout.dense_weights(3) == "epoch-003" and layout.dense_optimizer(3) == "optimizer-003"
    assert layout.chain_after(1, 2) == [("masks", "L2-k2.npz"), ("grid", "L2", "k2"),
                                        ("stability", "L2", "k2")]
    # the instability analysis's copies and path, beside the grid
    assert layout.cell_result(Cell(2, 1, copy=0)) == ("stability", "L2", "k1", "copy-0",
                                                      "result.json")
    assert Cell(2, 1, copy=1).name == "L2-k1-copy1"
    assert layout.stability_path(2, 1) == ("stability", "L2", "k1", "path.json")
    assert pickle.loads(pickle.dumps(layout)).url == layout.url


def test_remote_context_is_derived_from_the_run(tmp_path):
    settings = tiny_settings("unused", str(tmp_path), "train.batch_size=8",
                             "rewind.optimizer=restore")
    run = RunDirectory(settings)
    facts = DatasetFacts(url="d", train_url="d/train", val_url="d/val", image_size=32,
                         num_classes=10, train_rows=300, val_rows=100)
    ctx = run.to_remote(facts, ModelSpec("lenet_300_100", 16, 10), dense_workers=3,
                        policy={"strategy": "global"})
    assert type(ctx.layout) is RunLayout and ctx.layout.url == run.url  # no settings inside
    assert isinstance(ctx.spec, MaskedSpec)
    assert ctx.workers == 3 and ctx.rewind_optimizer == "restore"
    procedure = ctx.procedure()  # cells train with the dense stage's procedure
    assert (procedure.workers, procedure.batch_size, procedure.global_batch) == (3, 8, 24)
    assert procedure.steps_per_epoch == 300 // 24
    # grid.data_order: fresh (the default) draws the grid's own order, not the dense run's
    assert procedure.seed == ctx.data_order_seed != settings.run.seed
    assert ctx.deterministic == settings.run.deterministic
    assert pickle.loads(pickle.dumps(ctx)) == ctx  # picklable for Spark tasks


def test_replicates_have_their_own_seeds_and_directories(tmp_path):
    settings = tiny_settings("unused", str(tmp_path), "run.replicates=3")
    run = RunDirectory(settings)
    replicates = run.replicates()
    assert [r.url for r in replicates] == [f"{run.url}/replicate-{i}" for i in range(3)]
    seeds = [r.settings.run.seed for r in replicates]
    # the same settings give the same seeds; raising the count keeps the run directory and
    # the replicates already there
    assert [r.settings.run.seed for r in RunDirectory(settings).replicates()] == seeds
    more = RunDirectory(tiny_settings("unused", str(tmp_path), "run.replicates=5"))
    assert more.url == run.url
    assert [r.settings.run.seed for r in more.replicates()[:3]] == seeds
    # no two replicates, and no control draw of any of them, share a seed
    draws = [Cell(level, k, control).seed(seed) for seed in seeds for level in (1, 2, 3)
             for k in (0, 1, 2) for control in ("reinit", "random_mask")]
    assert len(set(seeds + draws)) == len(seeds) + len(draws)
    many = [replicate_seed(settings.run.seed, i) for i in range(1000)]
    assert len(set(many)) == 1000
    ctx = replicates[2].to_remote(
        DatasetFacts(url="d", train_url="d/train", val_url="d/val", image_size=32,
                     num_classes=10, train_rows=300, val_rows=100),
        ModelSpec("lenet_300_100", 16, 10), dense_workers=2, policy={})
    assert (ctx.replicate, ctx.run_seed) == (2, seeds[2])


def test_a_cell_trained_on_another_data_order_is_refused_not_mixed(tmp_path):
    import dataclasses

    import pytest

    from pipeline.experiment.cell_run import finished_result
    from pipeline.experiment.preflight import PreflightError

    settings = tiny_settings("unused", str(tmp_path))
    run = RunDirectory(settings)
    facts = DatasetFacts(url="d", train_url="d/train", val_url="d/val", image_size=32,
                         num_classes=10, train_rows=300, val_rows=100)
    ctx = run.to_remote(facts, ModelSpec("lenet_300_100", 16, 10), dense_workers=1,
                        policy={"strategy": "global"})
    cell = Cell(1, 0, "reinit")
    row = {"cell": cell.name, "status": "ok", "data_order_seed": ctx.data_order_seed}
    ctx.layout.store.write_json(row, *ctx.layout.cell_result(cell))
    assert finished_result(ctx, cell) == row
    replay = dataclasses.replace(ctx, data_order="replay")  # the dense run's order
    with pytest.raises(PreflightError, match="trained on another data order"):
        finished_result(replay, cell)
    del row["data_order_seed"]  # a result written before grid.data_order existed
    ctx.layout.store.write_json(row, *ctx.layout.cell_result(cell))
    with pytest.raises(PreflightError, match="give this run a new run.output"):
        finished_result(ctx, cell)
