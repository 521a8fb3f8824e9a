"""The compiled models a Python worker keeps between tasks (pipeline.train.model_cache)."""

from __future__ import annotations

import keras
import pytest

from pipeline.experiment.settings import TrainSettings
from pipeline.models.spec import ModelSpec
from pipeline.train.in_process import compiled_model
from pipeline.train.model_cache import ModelCache

STEPS = 5


def _train(**kw) -> TrainSettings:
    return TrainSettings(**{"epochs": 2, "batch_size": 8, "optimizer": "sgd",
                            "learning_rate": 0.05, "lr_schedule": "cosine", **kw})


def test_the_least_recently_used_entry_goes_first():
    cache: ModelCache[object] = ModelCache(kept=2)
    a, b, c = object(), object(), object()
    assert cache.get("a", lambda: a) is a
    assert cache.get("b", lambda: b) is b
    assert cache.get("a", lambda: object()) is a  # kept; "a" is now the most recent
    assert cache.get("c", lambda: c) is c  # evicts "b"
    assert len(cache) == 2 and cache.builds == 3
    assert cache.get("a", lambda: object()) is a
    assert cache.get("b", lambda: object()) is not b  # rebuilt
    assert cache.builds == 4


def test_a_worker_alternating_between_two_models_builds_each_once():
    """A dense round and a cell, or two jobs' cells, in one reused worker."""
    lenet, conv = ModelSpec("lenet_300_100", 8, 10), ModelSpec("conv4", 8, 10)
    first = compiled_model(lenet, _train(), STEPS)
    other = compiled_model(conv, _train(), STEPS)
    assert compiled_model(lenet, _train(), STEPS)[0] is first[0]
    assert compiled_model(conv, _train(), STEPS)[0] is other[0]


def test_settings_that_do_not_change_the_compiled_model_share_it():
    """The key is the optimizer's and loss's own config: data-side settings share a model,
    anything in the optimizer's config (here the schedule's length) does not."""
    spec = ModelSpec("lenet_300_100", 8, 10, seed=3)
    first = compiled_model(spec, _train(), STEPS)
    same = compiled_model(spec.architecture(), _train(augment=False, num_workers=7,
                                                      round_images_per_worker=64), STEPS)
    assert same[0] is first[0]
    assert compiled_model(spec, _train(epochs=3), STEPS)[0] is not first[0]
    assert compiled_model(spec, _train(label_smoothing=0.1), STEPS)[0] is not first[0]
    assert compiled_model(spec, _train(), STEPS + 1)[0] is not first[0]


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_new_model_keeps_the_tasks_mixed_precision(mixed_float16):
    """train.mixed_precision sets the global policy in the task; building a model that is
    not kept must not reset it (keras.backend.clear_session() would)."""
    for spec in (ModelSpec("lenet_300_100", 8, 10), ModelSpec("conv4", 8, 10)):
        model, _ = compiled_model(spec, _train(learning_rate=0.01), STEPS)
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert model.layers[-1].dtype_policy.name == "mixed_float16"
