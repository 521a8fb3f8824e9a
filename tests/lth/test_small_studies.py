"""The pieces `make reproduce` adds: the gray digits sample, gray inputs, the paper's
per-kind pruning rates, and the two study configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.int16)


def test_gray_sample_is_plain_digits_and_rest_goes_to_val(tmp_path):
    from pipeline.data.sample import load_digit_images, make_sample_imagenet

    counts = make_sample_imagenet(str(tmp_path / "s"), train_per_class=140, val_per_class=None,
                                  size=16, style="gray", shuffle=True)
    assert counts == {"train": 1400, "val": 1797 - 1400}
    files = sorted((tmp_path / "s" / "train").rglob("*.JPEG"))
    x = _pixels(files[0])
    assert x.shape == (16, 16, 3)
    assert np.abs(x[..., 0] - x[..., 1]).max() <= 2  # gray: R = G = B up to JPEG rounding
    images, _ = load_digit_images()
    index = int(files[0].stem.split("_")[1])
    # white on black: the digit's own ink pattern, brightest where the scan is darkest ink
    small = np.asarray(Image.fromarray(x[..., 0].astype(np.uint8)).resize((8, 8),
                                                                          Image.Resampling.BOX))
    assert np.corrcoef(small.ravel(), images[index].ravel())[0, 1] > 0.9


def test_shuffled_split_is_seeded_and_disjoint():
    from pipeline.data.sample import load_digit_images, split_indices

    _, labels = load_digit_images()
    ordered = split_indices(labels, 140, None)
    a, b = split_indices(labels, 140, None, 3), split_indices(labels, 140, None, 3)
    assert a == b and a != split_indices(labels, 140, None, 4)
    assert a["train"] != ordered["train"]
    assert not set(a["train"]) & set(a["val"])
    assert sorted(a["train"] + a["val"]) == list(range(len(labels)))


def test_sample_cli_rejects_a_bad_count(tmp_path, capsys):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "jobs" / "make_sample_imagenet.py"),
                          str(tmp_path / "s"), "--val-per-class", "many"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "expected a count or 'rest'" in out.stderr


@pytest.mark.parametrize("name", ["lenet_300_100", "conv4"])
def test_grayscale_models_see_one_channel(name):
    from pipeline.models import create_model

    gray = create_model(name, image_size=16, classes=10, grayscale=True, seed=1)
    first = next(w for w in gray.weights if "kernel" in w.path)
    assert first.shape[0] == (256 if name == "lenet_300_100" else 3)
    if name == "conv4":
        assert first.shape[2] == 1
    rng = np.random.default_rng(0)
    plane = rng.uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    rgb = np.repeat(plane, 3, axis=-1)
    tinted = rgb + np.array([30.0, -30.0, 0.0], "float32")  # same channel mean
    np.testing.assert_allclose(gray.predict(rgb, verbose=0), gray.predict(tinted, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_mobilenet_refuses_grayscale():
    from pipeline.models import create_model

    with pytest.raises(ValueError, match="colour images"):
        create_model("mobilenet_v2", image_size=32, classes=10, grayscale=True)


def test_gray_model_exports_without_custom_objects(tmp_path):
    import keras

    from pipeline.models import create_model

    model = create_model("lenet_300_100", image_size=16, classes=10, grayscale=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_conv_fraction_prunes_convolutions_at_their_own_rate():
    from pipeline.models import create_model
    from pipeline.tickets import PruningPolicy, to_masked
    from pipeline.tickets.pruning import masks_at_level

    model = to_masked(create_model("conv4", image_size=8, classes=10, grayscale=True))
    policy = PruningPolicy(strategy="layerwise", fraction_per_level=0.2, conv_fraction=0.1,
                           classifier_fraction=0.1)
    masks = masks_at_level(model, policy, 3)
    kept = {name: float(m.mean()) for name, m in masks.items()}
    for name in ("conv1", "conv2", "conv3", "conv4"):
        assert kept[name] == pytest.approx(0.9 ** 3, abs=2e-3), name
    for name in ("fc1", "fc2"):
        assert kept[name] == pytest.approx(0.8 ** 3, abs=1e-3), name
    assert kept["predictions"] == pytest.approx(0.9 ** 3, abs=2e-3)
    # a first-conv fraction still overrides the conv rate for the first convolution
    first_dense = PruningPolicy(strategy="layerwise", fraction_per_level=0.2,
                                conv_fraction=0.1, first_conv_fraction=0.0)
    assert masks_at_level(model, first_dense, 3)["conv1"].all()


@pytest.mark.parametrize("config, sparsest", [("lenet_digits", 0.07), ("conv4_digits", 0.40)])
def test_study_configs_follow_the_paper(config, sparsest):
    from pipeline.config import load_config
    from pipeline.experiment.settings import PruneJobSettings
    from pipeline.models import create_model
    from pipeline.tickets import PruningPolicy, to_masked
    from pipeline.tickets.pruning import masks_at_level

    settings = load_config(PruneJobSettings, str(ROOT / "conf" / f"{config}.yaml"), [])
    assert settings.run.replicates == 5
    assert settings.rewind.epochs[0] == 0 and len(settings.rewind.epochs) == 2
    assert set(settings.grid.controls) == {"reinit", "random_mask"}
    assert settings.train.num_workers == 1 and settings.train.optimizer == "adam"
    assert settings.data.holdout_per_class == 10  # early stops read the holdout, not val
    m = settings.model
    model = to_masked(create_model(m.name, image_size=m.image_size, classes=10,
                                   grayscale=m.grayscale))
    policy = PruningPolicy.from_settings(settings.prune)
    masks = masks_at_level(model, policy, settings.prune.levels)
    remaining = sum(int(v.sum()) for v in masks.values()) / sum(v.size for v in masks.values())
    assert remaining <= sparsest
    assert kept_rate(masks_at_level(model, policy, 1), "predictions") == pytest.approx(0.9, 1e-2)


def kept_rate(masks, name):
    return float(masks[name].mean())
