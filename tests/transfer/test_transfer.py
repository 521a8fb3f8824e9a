"""Ticket transfer on the digits halves: a ticket found on digits 0-4 trained on 5-9."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ConfigError
from pipeline.experiment.cells import Cell
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.preflight import PreflightError
from pipeline.experiment.run_layout import RunLayout
from pipeline.models import CLASSIFIER
from pipeline.store import ArtifactStore
from pipeline.tickets import masks_from_bytes
from pipeline.train.checkpoints import load_checkpoint
from pipeline.transfer.job import run_transfer_job
from pipeline.transfer.settings import load_transfer_settings
from tests.support.digit_halves import ingest_halves
from tests.support.job_settings import tiny_settings

CONTROLS = ("none", "reinit", "random_mask")


@pytest.fixture(scope="module")
def halves(spark, tmp_path_factory):
    return ingest_halves(spark, tmp_path_factory.mktemp("halves"))


@pytest.fixture(scope="module")
def runs(spark, halves, tmp_path_factory):
    """The source run on digits 0-4 and a run of the same settings on digits 5-9."""
    first, second = halves
    output = str(tmp_path_factory.mktemp("runs"))
    source = run_prune_job(tiny_settings(first, output, "prune.levels=1"), spark=spark)
    target = run_prune_job(tiny_settings(second, output, "prune.levels=1"), spark=spark)
    return source.run_url, target.run_url


@pytest.fixture(scope="module")
def transfer(spark, halves, runs):
    source, target = runs
    settings = load_transfer_settings(source, halves[1], target_run=target)
    return run_transfer_job(settings, spark=spark)


def _table(outcome) -> pd.DataFrame:  # noqa: ANN001
    return pd.read_csv(ArtifactStore(outcome.run_url).path("results.csv"))


def test_every_line_of_the_transfer_is_in_the_table(transfer):
    table = _table(transfer)
    assert (table["status"] == "ok").all(), table[["cell", "error"]]
    cells = set(table["cell"])
    expected = {"dense", "L0-k0-none", "L0-k1-none"} | {
        f"L1-k{k}-{c}" for k in (0, 1) for c in (*CONTROLS, "target_ticket")}
    assert cells == expected
    assert len(table) == len(expected)
    ticket = table[table["cell"] == "L1-k0-none"].iloc[0]
    # the new classifier is dense: a little more than the source's half of the weights
    assert 0.5 < ticket["weights_remaining_prunable"] < 0.6
    report = ArtifactStore(transfer.run_url).read_text("report.md")
    assert "## Transfer" in report and "ticket found on the target" in report


def test_transferred_tickets_keep_the_source_masks_and_weights(transfer, runs):
    source = RunLayout(runs[0]).replicate(0)
    rep = RunLayout(transfer.run_url).replicate(0)
    for k in (0, 1):
        theirs = masks_from_bytes(source.store.read_bytes(*source.masks(1, k)))
        ours = masks_from_bytes(rep.store.read_bytes(*rep.masks(1, k)))
        assert set(theirs) == set(ours)
        for name in theirs:
            if name == CLASSIFIER:
                assert ours[name].all() and ours[name].shape[-1] == 5
            else:
                np.testing.assert_array_equal(ours[name], theirs[name])
        before = load_checkpoint(source.dense_dir(), source.dense_weights(k))
        after = load_checkpoint(rep.rewind_dir(True), rep.dense_weights(k))
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True))
                   if a.shape != b.shape or not np.array_equal(a, b)]
        # the classifier's kernel (a fresh draw; its zero bias may equal the source's at k=0)
        assert changed and set(changed) <= {len(before) - 2, len(before) - 1}, changed


def test_masked_weights_stay_exactly_zero(transfer):
    from pipeline.models import ModelSpec

    rep = RunLayout(transfer.run_url).replicate(0)
    m = load_transfer_settings_of(transfer).model
    model = ModelSpec(m.name, m.image_size, 5, alpha=m.alpha, bn_momentum=m.bn_momentum).build()
    checked = 0
    for k in (0, 1):
        for control in CONTROLS:
            cell = rep.cell_dir(Cell(1, k, control))
            masks = masks_from_bytes(cell.read_bytes(rep.CELL_MASKS))
            model.set_weights(load_checkpoint(cell, rep.CELL_WEIGHTS))
            for name, mask in masks.items():
                kernel = model.get_layer(name).weights[0].numpy()
                assert kernel.shape == mask.shape
                assert not np.any(kernel[~mask]), (control, k, name)
                checked += int((~mask).sum())
    assert checked > 0


def load_transfer_settings_of(outcome):  # noqa: ANN001, ANN201
    import yaml

    from pipeline.config import from_dict
    from pipeline.transfer.settings import TransferJobSettings

    text = ArtifactStore(outcome.run_url).read_text("settings.yaml")
    return from_dict(TransferJobSettings, yaml.safe_load(text))


def test_rerun_resumes_without_training(spark, halves, runs, transfer):
    settings = load_transfer_settings(runs[0], halves[1], target_run=runs[1])
    again = run_transfer_job(settings, spark=spark)
    assert again.run_url == transfer.run_url
    assert _table(again).equals(_table(transfer))


def test_head_only_trains_only_the_classifier(spark, halves, runs):
    # rewind point 1: frozen at the initialization (k=0), MobileNetV2's features in inference
    # mode are ~1e-10, and a classifier on them barely moves
    settings = load_transfer_settings(runs[0], halves[1], overrides=[
        "transfer.mode=head_only", "rewind.epochs=[1]", "grid.controls=[]"])
    outcome = run_transfer_job(settings, spark=spark)
    rep = RunLayout(outcome.run_url).replicate(0)
    start = load_checkpoint(rep.rewind_dir(True), rep.dense_weights(1))
    for cell in (Cell(0, 1), Cell(1, 1)):
        masks = masks_from_bytes(rep.cell_dir(cell).read_bytes(rep.CELL_MASKS))
        trained = load_checkpoint(rep.cell_dir(cell), rep.CELL_WEIGHTS)
        m = settings.model
        from pipeline.models import ModelSpec
        from pipeline.transfer.weights import classifier_positions

        model = ModelSpec(m.name, m.image_size, 5, alpha=m.alpha).build()
        head = classifier_positions(model)
        model.set_weights(start)
        for name, mask in masks.items():  # the plain weights come back masked
            layer_kernel = model.get_layer(name).weights[0]
            layer_kernel.assign(layer_kernel.numpy() * mask)
        expected = model.get_weights()
        for i, (a, b) in enumerate(zip(expected, trained, strict=True)):
            if i in head:
                assert not np.array_equal(a, b), f"{cell.name}: the classifier did not train"
            else:  # kernels, biases and BatchNorm statistics alike
                np.testing.assert_array_equal(a, b, err_msg=f"{cell.name}: weight {i}")


def test_few_shot_trains_on_n_images_per_class(spark, halves, runs):
    from pipeline.data.dataset import DatasetSplit

    settings = load_transfer_settings(runs[0], halves[1], overrides=[
        "transfer.shots_per_class=8", "train.batch_size=4", "rewind.epochs=[0]",
        "grid.controls=[]"])
    outcome = run_transfer_job(settings, spark=spark)
    rep = RunLayout(outcome.run_url).replicate(0)
    shots = DatasetSplit.of(ArtifactStore(rep.shots_url()).url("train"))
    jpegs, labels = shots.read_encoded(shots.row_groups())
    assert sorted(np.bincount(labels, minlength=5)) == [8] * 5
    full = DatasetSplit.of(ArtifactStore(halves[1]).url("train"))
    all_jpegs, all_labels = full.read_encoded(full.row_groups())
    pairs = {(bytes(j), int(y)) for j, y in zip(all_jpegs, all_labels, strict=True)}
    assert all((bytes(j), int(y)) in pairs for j, y in zip(jpegs, labels, strict=True))
    # 40 images, 2 workers x 4 per batch: at most 5 steps an epoch, for every model
    histories = ArtifactStore(rep.url).read_json("grid", "histories.json")
    dense = load_checkpoint_meta(rep, 1)
    steps = dense["last_step"] - dense["first_step"]
    assert 0 < steps <= 5
    for history in histories:
        assert all(h["last_step"] - h["first_step"] == steps for h in history)


def load_checkpoint_meta(rep: RunLayout, epoch: int) -> dict:
    from pipeline.train.checkpoints import checkpoint_meta

    return checkpoint_meta(rep.dense_dir(), rep.dense_weights(epoch))


def test_a_transfer_keeps_the_source_model(halves, runs):
    with pytest.raises(ConfigError, match="model.alpha: a transfer keeps"):
        load_transfer_settings(runs[0], halves[1], overrides=["model.alpha=0.5"])


def test_missing_source_artifacts_are_named(halves, runs, tmp_path):
    import shutil

    copy = tmp_path / "source"
    shutil.copytree(ArtifactStore(runs[0]).path(), copy)
    (copy / "replicate-0" / "masks" / "L1-k1.npz").unlink()
    settings = load_transfer_settings(str(copy), halves[1])
    with pytest.raises(PreflightError, match="no level-1 masks for rewind point 1"):
        run_transfer_job(settings)
