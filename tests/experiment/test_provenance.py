"""A finished cell whose inputs changed under it is retrained, and says so."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tests.support.job_settings import tiny_settings


@pytest.fixture
def finished_cell(tmp_path) -> dict:
    """A run with dense epoch 0, level-1 masks and the finished cell L1-k0-none, made
    without training (the cell's own code: prepare_model, finish_cell)."""
    from pipeline.experiment.cell_run import finish_cell, prepare_model
    from pipeline.experiment.cells import Cell
    from pipeline.experiment.dense_stage import model_spec
    from pipeline.experiment.mask_stage import policy_for
    from pipeline.experiment.preflight import DatasetFacts
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.tickets import PruningPolicy, masks_at_level, masks_to_bytes, to_masked
    from pipeline.train.checkpoints import save_checkpoint

    settings = tiny_settings(str(tmp_path / "no-dataset"), str(tmp_path / "runs"),
                             "prune.levels=1", "rewind.epochs=[0]", "data.num_classes=10")
    run = RunDirectory(settings)
    rep = run.replicates()[0]
    facts = DatasetFacts(url=settings.data.url, train_url="", val_url="", image_size=32,
                         num_classes=10, train_rows=60, val_rows=20)
    policy = policy_for(rep)
    ctx = rep.to_remote(facts, model_spec(rep, facts), 1, policy.to_dict())
    plain = ctx.spec.build()
    save_checkpoint(rep.dense_dir(), plain.get_weights(), rep.dense_weights(0))
    masked = to_masked(plain)
    masks = masks_at_level(masked, PruningPolicy.from_dict(policy.to_dict()), level=1)
    rep.store.write_bytes(masks_to_bytes(masks), *rep.masks(1, 0))
    cell = Cell(1, 0)
    model, used, start, provenance = prepare_model(ctx, cell)
    history = [{"epoch": 1, "loss": 2.0, "first_step": 0, "last_step": 2,
                "learning_rate": 0.02, "images": 10, "top1": 0.1, "top5": 0.5,
                "val_loss": 2.3}]
    row = finish_cell(ctx, cell, model, used, start, history, 1.0, provenance)
    return {"ctx": ctx, "rep": rep, "cell": cell, "row": row, "plain": plain}


def test_an_unchanged_cell_is_kept(finished_cell) -> None:
    from pipeline.experiment.cell_run import finished_result

    row = finished_cell["row"]
    assert set(row["provenance"]) == {"rewind", "masks"}
    assert finished_result(finished_cell["ctx"], finished_cell["cell"], verify=True) == row


@pytest.mark.parametrize("changed", ["rewind checkpoint", "mask file"])
def test_a_cell_whose_input_changed_is_retrained(finished_cell, changed, caplog) -> None:
    from pipeline.experiment.cell_run import finished_result
    from pipeline.tickets import masks_from_bytes, masks_to_bytes
    from pipeline.train.checkpoints import save_checkpoint

    rep, ctx, cell = finished_cell["rep"], finished_cell["ctx"], finished_cell["cell"]
    if changed == "rewind checkpoint":
        other = [w + np.float32(0.5) for w in finished_cell["plain"].get_weights()]
        save_checkpoint(rep.dense_dir(), other, rep.dense_weights(0))
    else:
        masks = masks_from_bytes(rep.store.read_bytes(*rep.masks(1, 0)))
        name = sorted(masks)[1]
        masks[name] = ~masks[name]
        rep.store.write_bytes(masks_to_bytes(masks), *rep.masks(1, 0))
    with caplog.at_level(logging.WARNING):
        assert finished_result(ctx, cell, verify=True) is None
    assert f"cell L1-k0-none was trained from a {changed} that has changed since; " \
           "retraining it" in caplog.text
    assert not rep.store.exists(*rep.cell_result(cell))
