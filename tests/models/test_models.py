"""Model registry: names, determinism, input scaling, shapes."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from pipeline.models import create_model, list_models

SMALL = {
    "mobilenet_v2": dict(image_size=32, classes=10, alpha=0.35),
    "lenet_300_100": dict(image_size=8, classes=10, channels=1),
    "conv4": dict(image_size=8, classes=10, channels=1),
}


def _same(a: keras.Model, b: keras.Model) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


def test_registry_lists_the_three_models() -> None:
    assert {"mobilenet_v2", "lenet_300_100", "conv4"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet9000", image_size=32, classes=10)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_gives_bit_identical_weights(name: str) -> None:
    kw = SMALL[name]
    first = create_model(name, seed=7, **kw)
    assert _same(first, create_model(name, seed=7, **kw))
    assert not _same(first, create_model(name, seed=8, **kw))
    assert first.output_shape == (None, 10)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_build_has_one_config_whatever_the_seed(name: str) -> None:
    """Executors keep a compiled model keyed by the model's JSON (and cells by
    ``ModelSpec.architecture``): an auto-numbered layer name or a seed in the config would
    make every build a new key, and every round and cell a rebuild and a retrace."""
    from pipeline.models.spec import ModelSpec
    from pipeline.tickets.masked_spec import MaskedSpec

    kw = SMALL[name]
    spec = ModelSpec(name, kw["image_size"], kw["classes"], alpha=kw.get("alpha", 1.0), seed=1)
    reseeded = dataclasses.replace(spec, seed=2)
    for twin, other in ((spec, reseeded), (MaskedSpec(spec), MaskedSpec(reseeded))):
        assert len({twin.build().to_json(), twin.build().to_json(),
                    other.build().to_json()}) == 1, twin
        assert twin.architecture() == other.architecture()
    assert spec.architecture() == dataclasses.replace(spec, seed=0)
    # compiled, the config records the optimizer: by a fixed name, not Keras' numbering
    from pipeline.experiment.settings import TrainSettings
    from pipeline.train.optimizers import make_loss, make_optimizer

    compiled = set()
    for _ in range(2):
        model = spec.build()
        model.compile(optimizer=make_optimizer(TrainSettings(), 10), loss=make_loss(0.0))
        compiled.add(model.to_json())
    assert len(compiled) == 1


def test_seeding_leaves_global_python_random_alone() -> None:
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    create_model("lenet_300_100", image_size=8, classes=10, channels=1)
    assert random.random() == expected


def test_mobilenet_options() -> None:
    narrow = create_model("mobilenet_v2", image_size=48, classes=5, alpha=0.35, dropout=0.2)
    wide = create_model("mobilenet_v2", image_size=32, classes=5, alpha=0.5)
    assert narrow.input_shape == (None, 48, 48, 3) and narrow.output_shape == (None, 5)
    assert narrow.count_params() < wide.count_params()
    assert any(isinstance(layer, keras.layers.Dropout) for layer in narrow.layers)
    assert narrow.get_layer("predictions").units == 5
    assert all(not isinstance(layer, keras.Model) for layer in narrow.layers)  # flat graph
    with pytest.raises(ValueError, match=">= 32"):
        create_model("mobilenet_v2", image_size=16, classes=5)


@pytest.mark.parametrize(("name", "low", "high"), [("mobilenet_v2", -1.0, 1.0),
                                                   ("lenet_300_100", 0.0, 1.0)])
def test_models_scale_0_255_pixels_themselves(name: str, low: float, high: float) -> None:
    model = create_model(name, **SMALL[name])
    scale = model.get_layer("rescale")
    pixels = np.array([[0.0, 255.0]], dtype="float32")
    np.testing.assert_allclose(np.asarray(scale(pixels)), [[low, high]], atol=1e-6)
