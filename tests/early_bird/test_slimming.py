"""Network slimming: BatchNorm-γ channel masks, the L1 penalty on γ, and both tracked with
rounds in the main job (MobileNetV2 on the digits sample)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.early_bird.channels import channel_masks
from pipeline.early_bird.series import flat
from pipeline.early_bird.tracker import CHANNELS, EARLY_BIRD_DIR, EARLY_BIRD_JSON, mask_name
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_layout import RunLayout
from pipeline.models.batch_norm import scale_layers
from pipeline.models.spec import ModelSpec
from pipeline.tickets import (
    PruningPolicy,
    masks_at_level,
    masks_from_bytes,
    ones_masks,
    rewind,
    to_masked,
)
from pipeline.train.checkpoints import load_checkpoint
from tests.support.job_settings import tiny_settings

SPEC = ModelSpec("mobilenet_v2", 32, 10, alpha=0.35)


def _scales(model: keras.Model) -> dict[str, np.ndarray]:
    return {layer.name: np.abs(keras.ops.convert_to_numpy(layer.gamma))
            for layer in scale_layers(model)}


def test_channel_mask_prunes_the_smallest_scales_over_the_whole_model():
    model = SPEC.build()
    rng = np.random.default_rng(0)
    for layer in scale_layers(model):
        layer.gamma.assign(rng.normal(size=layer.gamma.shape).astype("float32"))
    masks = channel_masks(model, 0.3)
    scales = _scales(model)
    assert set(masks) == set(scales)
    assert all(masks[n].shape == scales[n].shape for n in masks)
    kept = np.concatenate([scales[n][masks[n]] for n in sorted(masks)])
    pruned = np.concatenate([scales[n][~masks[n]] for n in sorted(masks)])
    total = kept.size + pruned.size
    assert pruned.size == round(0.3 * total)
    assert pruned.max() <= kept.min()
    np.testing.assert_array_equal(flat(channel_masks(model, 0.3)), flat(masks))


def test_a_model_without_batch_norm_has_no_channel_mask():
    with pytest.raises(ValueError, match="no BatchNormalization scales"):
        channel_masks(ModelSpec("lenet_300_100", 16, 10, grayscale=True).build(), 0.3)


def test_the_slimming_penalty_is_in_the_loss_of_every_copy_training_builds():
    l1 = 1e-3
    model = ModelSpec(**{**SPEC.to_dict(), "slimming_l1": l1}).build()
    want = l1 * sum(float(s.sum()) for s in _scales(model).values())
    assert want > 0
    # the driver's model, an Elephas worker's (rebuilt from JSON) and the masked twin
    for copy in (model, keras.models.model_from_json(model.to_json()), to_masked(model)):
        got = float(sum(keras.ops.convert_to_numpy(x) for x in copy.losses))
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert not SPEC.build().losses


@pytest.fixture(scope="module")
def slimmed(spark, sample_dataset, tmp_path_factory):
    settings = tiny_settings(
        sample_dataset, str(tmp_path_factory.mktemp("eb-slim")), "train.epochs=3",
        "train.round_images_per_worker=64", "train.num_workers=2", "prune.levels=1",
        "rewind.epochs=[0]", "grid.controls=[]", "train.slimming_l1=1e-4",
        "early_bird.enabled=true", "early_bird.every_rounds=1",
        "early_bird.channel_ratio=0.3", "early_bird.masks=channels", "early_bird.window=2",
        "early_bird.epsilon=0.5")
    return settings, run_prune_job(settings, spark=spark)


def test_rounds_are_tracked_with_both_masks_from_the_master_weights(slimmed):
    settings, outcome = slimmed
    rep = RunLayout(outcome.run_url).replicate(0)
    dense = rep.dense_dir()
    record = dense.read_json(EARLY_BIRD_JSON)
    points = record["points"]
    assert [p["round"] for p in points] == list(range(1, len(points) + 1))
    epochs = [p["epoch"] for p in points]
    assert epochs == sorted(epochs) and set(epochs) == {1, 2, 3}
    assert len(points) > 3, "more than one round per epoch"
    assert all(p["channel_distance"] is not None for p in points[1:])
    # the last round of each epoch saw exactly the weights its epoch checkpoint holds
    masked = to_masked(SPEC.build())
    policy = PruningPolicy.from_settings(settings.prune)
    for epoch in (1, 2, 3):
        last = [p for p in points if p["epoch"] == epoch][-1]
        rewind(masked, load_checkpoint(dense, rep.dense_weights(epoch)), ones_masks(masked))
        tracked = masks_from_bytes(dense.read_bytes(EARLY_BIRD_DIR, mask_name(last)))
        np.testing.assert_array_equal(flat(tracked), flat(masks_at_level(masked, policy, 1)))
        channels = masks_from_bytes(dense.read_bytes(EARLY_BIRD_DIR, mask_name(last, CHANNELS)))
        np.testing.assert_array_equal(flat(channels), flat(channel_masks(masked, 0.3)))


def test_resume_keeps_the_round_points(spark, slimmed):
    settings, outcome = slimmed
    rep = RunLayout(outcome.run_url).replicate(0)
    before = rep.dense_dir().read_json(EARLY_BIRD_JSON)
    # killed after the dense stage's last epoch, before its marker
    for stage in ("dense", "grid"):
        rep.store.delete(stage, "_COMPLETE")
    again = run_prune_job(settings, spark=spark)
    after = RunLayout(again.run_url).replicate(0).dense_dir().read_json(EARLY_BIRD_JSON)
    assert after["points"] == before["points"]
    assert after["detections"] == before["detections"]


def test_slimming_on_a_model_without_batch_norm_is_one_line(sample_dataset, tmp_path):
    from pipeline.experiment.preflight import PreflightError, preflight

    settings = tiny_settings(sample_dataset, str(tmp_path), "model.name=lenet_300_100",
                             "train.slimming_l1=1e-4")
    with pytest.raises(PreflightError, match="train.slimming_l1: model 'lenet_300_100' has no"):
        preflight(settings)
