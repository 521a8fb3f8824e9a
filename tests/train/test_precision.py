"""Dense rounds and grid cells compute in the same precision under mixed_float16."""

from __future__ import annotations

import keras
import pytest

from pipeline.models.spec import ModelSpec
from pipeline.train.precision import json_under_global_policy

SPEC = ModelSpec("mobilenet_v2", 32, 10, alpha=0.35)


@pytest.fixture
def driver_json():
    """The model JSON the driver hands Elephas: built under the default float32."""
    keras.mixed_precision.set_global_policy("float32")
    text = SPEC.build().to_json()
    yield text
    keras.mixed_precision.set_global_policy("float32")


def _policies(model: keras.Model) -> list[tuple[str, str]]:
    """(layer class, policy) in model order (auto-numbered layer names differ by build)."""
    return [(type(layer).__name__, layer.dtype_policy.name) for layer in model.layers]


def test_a_worker_rebuilds_the_drivers_model_as_a_cell_builds_its_own(driver_json):
    keras.mixed_precision.set_global_policy("mixed_float16")  # what a GPU task sets
    cell = SPEC.build()  # a grid cell builds its model in the task
    assert {p for _, p in _policies(cell)} == {"mixed_float16"}
    # rebuilt as is, the driver's float32 names win in some layers
    as_is = keras.models.model_from_json(driver_json)
    assert {p for _, p in _policies(as_is)} != {"mixed_float16"}
    worker = keras.models.model_from_json(json_under_global_policy(driver_json))
    assert _policies(worker) == _policies(cell)


def test_under_float32_the_json_is_unchanged(driver_json):
    assert json_under_global_policy(driver_json) == driver_json
