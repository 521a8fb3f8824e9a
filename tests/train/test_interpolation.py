"""The linear path between two copies: exact ends, no barrier between identical copies, a
barrier between a network and its permuted twin, BatchNorm statistics of the path's own
weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.models.spec import ModelSpec
from pipeline.report.instability import instability
from pipeline.seeding import make_deterministic
from pipeline.train.interpolation import alphas, interpolate, recompute_batchnorm

PATH = alphas(11)


@pytest.fixture(scope="module")
def digits():  # noqa: ANN201
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.repeat((data.images * (255.0 / 16.0)).astype(np.uint8)[..., None], 3, axis=-1)
    return images[:1400], data.target[:1400], images[1400:], data.target[1400:]


def _trained_lenet(digits, seed: int) -> keras.Model:  # noqa: ANN001
    x, y, _, _ = digits
    make_deterministic(seed)
    model = ModelSpec("lenet_300_100", 8, 10, seed=seed).build()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=8, shuffle=True, verbose=0)
    return model


def _errors(model: keras.Model, a, b, x, y) -> list[float]:  # noqa: ANN001
    errors = []
    for alpha in PATH:
        model.set_weights(interpolate(a, b, alpha))
        predicted = np.argmax(model.predict(x, batch_size=512, verbose=0), axis=1)
        errors.append(float(np.mean(predicted != y)))
    return errors


def test_the_ends_are_each_copy_exactly():
    rng = np.random.default_rng(0)
    a = [rng.standard_normal((3, 4)).astype(np.float32), np.arange(5, dtype=np.int64)]
    b = [rng.standard_normal((3, 4)).astype(np.float32), np.arange(5, dtype=np.int64) + 9]
    for alpha, expected in ((0.0, a), (1.0, b)):
        for got, want in zip(interpolate(a, b, alpha), expected, strict=True):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    middle = interpolate(a, b, 0.25)[0]
    np.testing.assert_allclose(middle, 0.75 * a[0] + 0.25 * b[0], rtol=1e-6)
    assert PATH[0] == 0.0 and PATH[-1] == 1.0 and len(PATH) == 11
    with pytest.raises(ValueError, match="at least 2"):
        alphas(1)


def test_identical_copies_have_no_barrier(digits):
    model = _trained_lenet(digits, 0)
    weights = model.get_weights()
    _, _, x_val, y_val = digits
    errors = _errors(model, weights, [w.copy() for w in weights], x_val, y_val)
    assert len(set(errors)) == 1
    assert instability(errors) == 0.0


def test_a_permuted_twin_computes_the_same_function_but_is_not_linearly_connected(digits):
    """The metric's power: permuting hidden units changes no output, yet the straight line
    between a network and its permuted twin passes through networks far worse than both."""
    model = _trained_lenet(digits, 0)
    _, _, x_val, y_val = digits
    weights = model.get_weights()  # fc1 kernel, bias, fc2 kernel, bias, head kernel, bias
    rng = np.random.default_rng(1)
    p1, p2 = rng.permutation(300), rng.permutation(100)
    twin = [w.copy() for w in weights]
    twin[0], twin[1] = weights[0][:, p1], weights[1][p1]
    twin[2], twin[3] = weights[2][p1][:, p2], weights[3][p2]
    twin[4] = weights[4][p2]
    model.set_weights(twin)
    np.testing.assert_allclose(model.predict(x_val, verbose=0),
                               _set_and_predict(model, weights, x_val), rtol=1e-4, atol=1e-6)
    errors = _errors(model, weights, twin, x_val, y_val)
    assert errors[0] == errors[-1] < 0.15  # the same function, and it learned
    # Deterministic (0.131 here). Over training seeds 0-2 x permutation seeds 0-4 it ranged
    # 0.045-0.292 (mean 0.127): always unstable by the paper's 2% threshold.
    assert instability(errors) > 0.02, errors


def _set_and_predict(model: keras.Model, weights, x) -> np.ndarray:  # noqa: ANN001
    model.set_weights(weights)
    return model.predict(x, verbose=0)


def _small_bn_net() -> keras.Model:
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.99, name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_recomputed_batchnorm_statistics_are_those_of_the_interpolated_weights():
    make_deterministic(0)
    model = _small_bn_net()
    rng = np.random.default_rng(0)
    a = [w + rng.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()]
    b = [w + rng.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()]
    batches = [rng.standard_normal((8, 6, 6, 2)).astype(np.float32) for _ in range(4)]
    model.set_weights(interpolate(a, b, 0.5))
    assert recompute_batchnorm(model, batches) == 4
    bn = model.get_layer("bn")
    assert bn.momentum == 0.99  # restored
    conv = keras.Model(model.input, model.get_layer("conv").output)
    outputs = [conv.predict(x, verbose=0).reshape(-1, 4) for x in batches]
    np.testing.assert_allclose(bn.moving_mean.numpy(),
                               np.mean([o.mean(axis=0) for o in outputs], axis=0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               np.mean([o.var(axis=0) for o in outputs], axis=0),
                               rtol=1e-4, atol=1e-5)
    # blending the copies' own statistics gives other numbers
    blended = interpolate(a, b, 0.5)
    names = [w.path for w in model.weights]
    mean_index = next(i for i, n in enumerate(names) if n.endswith("moving_mean"))
    assert not np.allclose(blended[mean_index], bn.moving_mean.numpy(), atol=1e-3)


def test_a_network_without_batchnorm_is_left_alone(digits):
    model = ModelSpec("lenet_300_100", 8, 10).build()
    before = model.get_weights()
    assert recompute_batchnorm(model, [digits[0][:8]]) == 0
    for x, y in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
