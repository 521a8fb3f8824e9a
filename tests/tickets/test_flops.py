"""Multiply-adds per image (pipeline.tickets.flops) against counts made by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.models.registry import create_model
from pipeline.tickets import ones_masks, set_masks, sparsity_report, to_masked
from pipeline.tickets.flops import count_flops


def _by_layer(model: keras.Model, dense: bool = True) -> dict[str, int]:
    """Multiply-adds per layer, of every weight (``dense``) or of the non-zero ones (a
    freshly initialized kernel may hold an exact 0.0)."""
    return {f.layer: f.dense_macs if dense else f.macs for f in count_flops(model).layers}


def test_lenet_300_100_by_hand() -> None:
    model = create_model("lenet_300_100", image_size=28, classes=10, channels=1)
    assert _by_layer(model) == {"fc1": 784 * 300, "fc2": 300 * 100, "predictions": 100 * 10}
    count = count_flops(model, ones_masks(to_masked(model)))
    assert count.dense_flops == count.flops_remaining == 266_200
    assert count.by_kind() == {"dense": (266_200, 266_200)}


def test_conv4_by_hand() -> None:
    model = create_model("conv4", image_size=32, classes=10)
    assert _by_layer(model) == {
        "conv1": 3 * 3 * 3 * 64 * 32 * 32,  # "same" padding: 32×32 outputs
        "conv2": 3 * 3 * 64 * 64 * 32 * 32,
        "conv3": 3 * 3 * 64 * 128 * 16 * 16,  # after the first 2×2 pooling
        "conv4": 3 * 3 * 128 * 128 * 16 * 16,
        "fc1": 8 * 8 * 128 * 256,
        "fc2": 256 * 256,
        "predictions": 256 * 10,
    }


def test_an_inverted_residual_block_of_mobilenet_v2_by_hand() -> None:
    """block_1 at 224 px, α 1: 112×112×16 in, expand ×6 to 96, 3×3 depthwise with stride
    2 to 56×56, project to 24; and the whole network against its paper's 300 M."""
    model = create_model("mobilenet_v2", image_size=224, classes=1000, alpha=1.0)
    macs = _by_layer(model)
    assert macs["block_1_expand"] == 16 * 96 * 112 * 112
    assert macs["block_1_depthwise"] == 3 * 3 * 96 * 56 * 56
    assert macs["block_1_project"] == 96 * 24 * 56 * 56
    assert macs["predictions"] == 1280 * 1000
    count = count_flops(model)
    assert 299e6 < count.dense_flops < 302e6  # Sandler et al. (2018), table 3: 300 M
    kinds = count.by_kind()
    assert set(kinds) == {"conv", "depthwise", "dense"}
    assert kinds["depthwise"][1] < 0.1 * count.dense_flops  # the 1×1 convolutions dominate


def test_only_remaining_weights_count() -> None:
    model = to_masked(create_model("conv4", image_size=32, classes=10))
    masks = ones_masks(model)
    rng = np.random.default_rng(0)
    masks["conv2"] = rng.random(masks["conv2"].shape) < 0.25
    masks["fc1"][:, :128] = False
    set_masks(model, masks)
    kept = int(np.count_nonzero(masks["conv2"]))
    count = count_flops(model)
    by_layer = {f.layer: f for f in count.layers}
    assert by_layer["conv2"].macs == kept * 32 * 32
    assert by_layer["fc1"].macs == 8 * 8 * 128 * 128
    assert count.dense_flops == count_flops(create_model("conv4", image_size=32,
                                                         classes=10)).dense_flops
    assert count.flops_remaining == count.dense_flops - (36864 - kept) * 1024 - 8192 * 128
    # masks given by name win over the layers' own; a plain layer's zeros count as pruned
    assert count_flops(model, {"conv2": np.ones_like(masks["conv2"])}).layers[1].macs == \
        36864 * 1024
    plain = create_model("conv4", image_size=32, classes=10)
    kernel = plain.get_layer("fc2").kernel.numpy()
    kernel[:10] = 0.0
    plain.get_layer("fc2").kernel.assign(kernel)
    assert _by_layer(plain, dense=False)["fc2"] == 246 * 256
    summary = sparsity_report(model).summary()
    assert summary["flops_remaining"] == count.flops_remaining
    assert summary["dense_flops"] == count.dense_flops


def test_a_layer_without_a_static_output_is_refused() -> None:
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(4, 3, name="c")(inputs)
    with pytest.raises(ValueError, match="c: output shape .* is not static"):
        count_flops(keras.Model(inputs, outputs))
