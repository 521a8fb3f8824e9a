"""Small MobileNetV2s with non-trivial BatchNorm statistics and zeroed weights, for the
slimming and TFLite tests."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.models.registry import create_model


def random_batchnorm(model: keras.Model, rng: np.random.Generator) -> None:
    """BatchNorm scales and shifts far from their initial values, and moving statistics
    measured on random images, as training leaves them: every constant is then non-trivial
    and the logits still depend on the image (with statistics drawn at random the signal
    dies out within a few blocks, and every image gets the same logits)."""
    from pipeline.train.interpolation import recompute_batchnorm

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.gamma.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.5, shape).astype("float32"))
    size = model.input.shape[1]
    images = rng.uniform(0, 255, (32, size, size, model.input.shape[-1])).astype("float32")
    recompute_batchnorm(model, [images])


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
    if zeros:
        zero_at_random(model, rng, zeros)
    random_batchnorm(model, rng)  # statistics of the pruned network, as retraining leaves them
    return model


def assert_varies_with_the_image(logits: np.ndarray) -> None:
    """Logits that differ between images: a comparison of two models on them means more
    than a comparison of constants."""
    assert np.ptp(np.asarray(logits), axis=0).max() > 1e-3, "the logits ignore the image"
