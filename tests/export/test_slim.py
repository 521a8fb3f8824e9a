"""Slimming (pipeline.export.slim): channels without effect removed, outputs unchanged."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.export.slim import SlimError, slim_model
from pipeline.models.registry import create_model
from tests.support.deploy_nets import (
    assert_varies_with_the_image,
    random_batchnorm,
    small_mobilenet,
    zero_channels,
)

# measured (deterministic): the largest logit difference is 4.3e-5 for logits up to 3.75
# (float32 sums over fewer channels in another order); the bound is 1e-4
LOGIT_TOLERANCE = 1e-4


def _logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


@pytest.fixture(scope="module")
def channel_ticket() -> dict:
    """MobileNetV2 (α 0.35, 32 px, logits out) with half of every block's expanded channels
    pruned as a channel ticket prunes them: expansion filter and depthwise channel."""
    rng = np.random.default_rng(0)
    model = small_mobilenet(rng)
    dropped = {}
    for layer in model.layers:
        if layer.name.endswith("_expand"):
            drop = np.flatnonzero(rng.random(layer.kernel.shape[-1]) < 0.5)
            zero_channels(layer, drop)
            depthwise = model.get_layer(layer.name.replace("_expand", "_depthwise"))
            zero_channels(depthwise, drop, axis=2)
            dropped[layer.name] = drop.size
    random_batchnorm(model, rng)  # the statistics of the pruned network
    x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    return {"model": model, "x": x, "dropped": dropped, "result": slim_model(model)}


def test_a_channel_ticket_slims_to_the_same_logits(channel_ticket) -> None:
    model, result, x = channel_ticket["model"], channel_ticket["result"], channel_ticket["x"]
    slim = result.model
    assert result.changed and result.channels_removed >= sum(channel_ticket["dropped"].values())
    assert result.parameters_after < 0.8 * result.parameters_before
    assert result.flops_after < result.flops_before
    assert_varies_with_the_image(_logits(model, x))
    np.testing.assert_allclose(_logits(slim, x), _logits(model, x), atol=LOGIT_TOLERANCE)
    for name, drop in channel_ticket["dropped"].items():
        before = model.get_layer(name).kernel.shape[-1]
        assert slim.get_layer(name).kernel.shape[-1] == before - drop, name
        depthwise = name.replace("_expand", "_depthwise")
        assert slim.get_layer(depthwise).kernel.shape[2] == before - drop, depthwise
        bn = slim.get_layer(f"{name}_BN")
        assert bn.moving_mean.shape[0] == before - drop
    # the same layers, all plain Keras
    assert [layer.name for layer in slim.layers] == [layer.name for layer in model.layers]
    assert all(type(layer).__module__.startswith("keras.") for layer in slim.layers)


def test_the_residual_chains_keep_a_channel_one_branch_still_uses(channel_ticket) -> None:
    model = channel_ticket["model"]
    project = model.get_layer("block_2_project")
    channels = project.kernel.shape[-1]
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    zero_channels(copy.get_layer("block_2_project"), np.arange(channels // 2))
    slim = slim_model(copy).model
    assert_varies_with_the_image(_logits(copy, channel_ticket["x"]))
    # block_2 adds block_1's output: the zeroed channels still carry block_1's values
    assert slim.get_layer("block_2_project").kernel.shape[-1] == channels
    np.testing.assert_allclose(_logits(slim, channel_ticket["x"]),
                               _logits(copy, channel_ticket["x"]), atol=LOGIT_TOLERANCE)


def test_a_dense_network_keeps_its_architecture() -> None:
    model = create_model("mobilenet_v2", image_size=32, classes=10, alpha=0.35)
    result = slim_model(model)
    assert not result.changed and result.parameters_after == result.parameters_before
    assert "no channel could be removed" in result.summary()
    assert "same architecture" in result.summary()


def test_conv4_through_padding_and_flatten() -> None:
    """A zeroed filter outputs relu(bias): removable before Flatten → Dense (folded into
    fc1's bias) and wherever it is 0, kept when a 3×3 convolution reads a non-zero one
    (zero padding makes its response differ at the border)."""
    rng = np.random.default_rng(1)
    model = create_model("conv4", image_size=32, classes=10, classifier_activation=None)
    conv2, conv4 = model.get_layer("conv2"), model.get_layer("conv4")
    conv2.bias.assign(np.where(np.arange(64) % 2 == 0, 0.3, -0.3).astype("float32"))
    conv4.bias.assign(rng.normal(0, 0.3, 128).astype("float32"))
    zero_channels(conv2, np.arange(16))  # 8 with relu(bias) = 0.3, 8 with 0
    zero_channels(conv4, np.arange(40))
    result = slim_model(model)
    slim = result.model
    assert slim.get_layer("conv2").kernel.shape[-1] == 64 - 8
    assert slim.get_layer("conv4").kernel.shape[-1] == 128 - 40
    assert slim.get_layer("fc1").kernel.shape[0] == 8 * 8 * (128 - 40)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    assert_varies_with_the_image(_logits(model, x))
    np.testing.assert_allclose(_logits(slim, x), _logits(model, x), atol=LOGIT_TOLERANCE)


def test_unstructured_sparsity_removes_few_channels() -> None:
    rng = np.random.default_rng(2)
    model = small_mobilenet(rng, zeros=0.5)
    result = slim_model(model)
    assert result.channels_removed < 0.1 * result.channels_before
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    assert_varies_with_the_image(_logits(model, x))
    np.testing.assert_allclose(_logits(result.model, x), _logits(model, x),
                               atol=LOGIT_TOLERANCE)


def test_a_model_it_cannot_read_is_refused() -> None:
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")], name="inner")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, inner(inputs))
    with pytest.raises(SlimError, match="nested model"):
        slim_model(model)
    from pipeline.tickets import to_masked

    with pytest.raises(SlimError, match="plain model"):
        slim_model(to_masked(create_model("conv4", image_size=8, classes=2)))
