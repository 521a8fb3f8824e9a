"""Masked layers: conversion, serialization the way Elephas moves models, zero invariant."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.models import create_model
from pipeline.tickets import (
    MaskedConv2D,
    MaskedDense,
    MaskedDepthwiseConv2D,
    custom_objects,
    get_masks,
    masked_layers,
    plain_weights,
    set_masks,
    to_masked,
    to_plain,
)
from pipeline.weights_npz import weights_from_bytes, weights_to_bytes
from tests.support.digits_nets import digits, random_masks, tiny_mixed_net


@pytest.fixture(scope="module")
def mobilenet() -> tuple[keras.Model, keras.Model, np.ndarray]:
    plain = create_model("mobilenet_v2", image_size=32, classes=10, alpha=0.35, seed=3)
    masked = to_masked(plain)
    x, _ = digits(32, 3)
    return plain, masked, x[:8]


def _probe(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Early features and the output: an untrained MobileNetV2 in inference mode shrinks
    activations towards 0 with depth, so its softmax alone is nearly constant."""
    probe = keras.Model(model.input, [model.get_layer("block_2_add").output, model.output])
    outputs = probe(x, training=False)
    return np.concatenate([np.asarray(a).reshape(len(x), -1) for a in outputs], axis=1)


def _index(model: keras.Model, variable) -> int:
    return next(i for i, v in enumerate(model.weights) if v is variable)


def _assert_masks_equal(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_to_masked_keeps_weights_and_outputs(mobilenet) -> None:
    plain, masked, x = mobilenet
    kinds = {type(layer) for layer in masked.layers}
    assert {MaskedConv2D, MaskedDepthwiseConv2D, MaskedDense} <= kinds
    assert not kinds & {keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense}
    assert len(masked_layers(masked)) == 53  # 35 conv + 17 depthwise + classifier
    assert [layer.name for layer in masked.layers] == [layer.name for layer in plain.layers]
    for got, want in zip(plain_weights(masked), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(_probe(masked, x), _probe(plain, x))


def test_masks_change_the_forward_pass_and_to_plain_exports_them(mobilenet) -> None:
    plain, _, x = mobilenet
    masked = to_masked(plain)
    masks = random_masks(masked, keep=0.5, seed=1)
    set_masks(masked, masks)
    for layer in masked_layers(masked):
        assert not layer.kernel.numpy()[~masks[layer.name]].any()
    _assert_masks_equal(get_masks(masked), masks)
    out = _probe(masked, x)
    assert np.abs(out - _probe(plain, x)).max() > 0.1 * np.abs(out).max()
    exported = to_plain(masked)
    assert not any(isinstance(layer, (MaskedConv2D, MaskedDense)) for layer in exported.layers)
    np.testing.assert_allclose(_probe(exported, x), out, rtol=1e-5, atol=1e-6)
    kernel = exported.get_layer("Conv1").kernel.numpy()
    assert not kernel[~masks["Conv1"]].any()


def test_json_and_weight_list_round_trip(mobilenet) -> None:
    _, masked, x = mobilenet
    set_masks(masked, random_masks(masked, keep=0.3, seed=2))
    rebuilt = keras.models.model_from_json(masked.to_json(), custom_objects=custom_objects())
    assert isinstance(rebuilt.get_layer("Conv1"), MaskedConv2D)
    rebuilt.set_weights(masked.get_weights())
    _assert_masks_equal(get_masks(rebuilt), get_masks(masked))
    np.testing.assert_array_equal(_probe(rebuilt, x), _probe(masked, x))


def test_keras_file_round_trip_keeps_masks(mobilenet, tmp_path) -> None:
    _, masked, x = mobilenet
    set_masks(masked, random_masks(masked, keep=0.3, seed=4))
    path = tmp_path / "masked.keras"
    masked.save(path)
    loaded = keras.models.load_model(path, custom_objects=custom_objects())
    for got, want in zip(loaded.get_weights(), masked.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    _assert_masks_equal(get_masks(loaded), get_masks(masked))
    np.testing.assert_array_equal(_probe(loaded, x), _probe(masked, x))


OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01),
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1),
    "sgd_weight_decay": lambda: keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.01),
}


class _CheckZeros(keras.callbacks.Callback):
    """After every batch: stored kernels are exactly 0 wherever the mask is 0."""

    def __init__(self, masks: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.masks = masks
        self.checked = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        for layer in masked_layers(self.model):
            kernel = layer.kernel.numpy()
            assert np.all(kernel[~self.masks[layer.name]] == 0.0), layer.name
        self.checked += 1


def _train_dense_then_masked(optimizer, masked_model_fn=tiny_mixed_net):
    """Warm the optimizer state up on the dense model, then mask and keep training."""
    x, y = digits()
    model = to_masked(masked_model_fn())
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(x[:256], y[:256], batch_size=64, epochs=1, verbose=0)
    masks = random_masks(model, keep=0.4, seed=5)
    set_masks(model, masks)
    return model, masks, x, y


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_masked_weights_stay_exactly_zero_under_optimizer(name: str) -> None:
    model, masks, x, y = _train_dense_then_masked(OPTIMIZERS[name]())
    before = plain_weights(model)
    check = _CheckZeros(masks)
    model.fit(x[:256], y[:256], batch_size=32, epochs=2, verbose=0, callbacks=[check])
    assert check.checked == 16
    after = model.get_weights()
    checkpoint = weights_from_bytes(weights_to_bytes(after))  # what a stage would save
    for layer in masked_layers(model):
        survivors = masks[layer.name]
        kernel = checkpoint[_index(model, layer.kernel)]
        assert np.all(kernel[~survivors] == 0.0)
        assert np.all(checkpoint[_index(model, layer.mask)] == survivors)
    moved = [not np.array_equal(b, a) for b, a in zip(before, plain_weights(model), strict=True)]
    assert sum(moved) >= len(masked_layers(model))  # it really trained


def test_without_the_constraint_momentum_would_revive_pruned_weights() -> None:
    """Shows the zero test above can fail: the forward-pass mask alone is not enough."""
    model, masks, x, y = _train_dense_then_masked(keras.optimizers.SGD(0.1, momentum=0.9))
    for layer in masked_layers(model):
        layer.kernel.constraint = None
    model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    revived = [np.any(layer.kernel.numpy()[~masks[layer.name]] != 0.0)
               for layer in masked_layers(model)]
    assert any(revived)


def test_elephas_style_worker_round_keeps_zeros() -> None:
    """Driver JSON + weights -> worker rebuilds, fits -> the averaged delta is 0 where masked."""
    x, y = digits()
    driver = to_masked(tiny_mixed_net())
    masks = random_masks(driver, keep=0.3, seed=6)
    set_masks(driver, masks)
    json_config, start = driver.to_json(), driver.get_weights()
    deltas = []
    for worker in range(2):
        model = keras.models.model_from_json(json_config, custom_objects=custom_objects())
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.set_weights(start)
        part = slice(worker * 128, (worker + 1) * 128)
        model.fit(x[part], y[part], batch_size=32, epochs=1, verbose=0)
        deltas.append([a - b for a, b in zip(model.get_weights(), start, strict=True)])
    mean_delta = [np.mean(ds, axis=0) for ds in zip(*deltas, strict=True)]
    driver.set_weights([w + d for w, d in zip(start, mean_delta, strict=True)])
    for layer in masked_layers(driver):
        assert np.all(layer.kernel.numpy()[~masks[layer.name]] == 0.0)
        assert np.array_equal(layer.mask.numpy() != 0, masks[layer.name])
