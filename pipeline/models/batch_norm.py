"""The BatchNorm scales (gamma) of a model: network slimming's channel importances."""

from __future__ import annotations

import keras

from pipeline.tickets.conversion import iter_layers


def scale_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer with a learned scale, in model order."""
    return [layer for layer in iter_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.scale]


def add_slimming_penalty(model: keras.Model, l1: float) -> None:
    """L1 on every BatchNorm scale: on the built variable (this model's loss) and in the
    layer's config (the copies Elephas workers and masked twins rebuild from it)."""
    layers = scale_layers(model)
    if not layers:
        raise ValueError("train.slimming_l1: the model has no BatchNormalization scales")
    for layer in layers:
        layer.gamma_regularizer = keras.regularizers.L1(l1)
        layer.gamma.regularizer = layer.gamma_regularizer
