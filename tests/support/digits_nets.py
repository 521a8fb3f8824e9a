"""Shared helpers for the ticket tests: the scikit-learn digits and a tiny mixed network."""

from __future__ import annotations

import functools

import keras
import numpy as np
from sklearn.datasets import load_digits


@functools.cache
def digits(size: int = 8, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 real 8x8 digits as float32 pixels 0..255, upscaled by repetition."""
    data = load_digits()
    x = (data.images * (255.0 / 16.0)).astype("float32")
    factor = size // 8
    x = np.repeat(np.repeat(x, factor, axis=1), factor, axis=2)[..., None]
    x = np.repeat(x, channels, axis=-1)
    return x, data.target.astype("int32")


def tiny_mixed_net(seed: int = 0) -> keras.Model:
    """Conv2D + BatchNorm + DepthwiseConv2D + Dense on 8x8 digits: all masked kinds, fast."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny")


def random_masks(model: keras.Model, keep: float, seed: int = 0) -> dict[str, np.ndarray]:
    from pipeline.tickets import masked_layers

    rng = np.random.default_rng(seed)
    return {
        layer.name: rng.random(tuple(layer.kernel.shape)) < keep for layer in masked_layers(model)
    }
