"""Small MobileNetV2s with non-trivial BatchNorm statistics and zeroed weights, for the
slimming and TFLite tests."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.models.registry import create_model


def random_batchnorm(model: keras.Model, rng: np.random.Generator) -> None:
    """BatchNorm statistics far from their initial values, so constants are not trivial."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.5, shape),
                               rng.normal(0, 0.5, shape), rng.uniform(0.5, 2.0, shape)])


def zero_channels(layer: keras.layers.Layer, channels: np.ndarray, axis: int = -1) -> None:
    kernel = layer.kernel.numpy()
    index = [slice(None)] * kernel.ndim
    index[axis] = channels
    kernel[tuple(index)] = 0.0
    layer.kernel.assign(kernel)


def zero_at_random(model: keras.Model, rng: np.random.Generator, fraction: float) -> None:
    for layer in model.layers:
        if getattr(layer, "kernel", None) is not None:
            kernel = layer.kernel.numpy()
            kernel[rng.random(kernel.shape) < fraction] = 0.0
            layer.kernel.assign(kernel)


def small_mobilenet(rng: np.random.Generator, zeros: float = 0.0) -> keras.Model:
    """MobileNetV2 (α 0.35, 32 px, 10 classes) with logits out, random BatchNorm statistics
    and ``zeros`` of every kernel's weights set to 0.0."""
    model = create_model("mobilenet_v2", image_size=32, classes=10, alpha=0.35,
                         classifier_activation=None)
    random_batchnorm(model, rng)
    if zeros:
        zero_at_random(model, rng, zeros)
    return model
