"""Networks on the straight line between two trained copies (linear mode connectivity).

Frankle, Dziugaite, Roy & Carbin (2020) train two copies of a network from one rewind point
with different data orders and evaluate the network at ``(1 − α)·a + α·b`` for evenly
spaced α. Weights are blended in float64 and cast back, so α = 0 and α = 1 give each
copy's own weights bit for bit.

BatchNorm's moving statistics are not weights of the function the copies learned: an
interpolated network's activations shrink in variance (Jordan et al. 2022, REPAIR), so its
blended statistics describe neither copy. ``recompute`` resets them and takes the
cumulative mean of the batch statistics over a fixed set of train batches in training mode
(the way SWA's ``update_bn`` does); ``interpolate`` blends them like weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

BATCHNORM_MODES = ("recompute", "interpolate")
BatchNormMode = Literal["recompute", "interpolate"]


def alphas(count: int) -> list[float]:
    """``count`` evenly spaced α from 0 to 1, both ends included."""
    if count < 2:
        raise ValueError(f"stability.alphas: at least 2 points (both ends), got {count}")
    return [float(a) for a in np.linspace(0.0, 1.0, count)]


def interpolate(a: Sequence[np.ndarray], b: Sequence[np.ndarray], alpha: float
                ) -> list[np.ndarray]:
    """``(1 − alpha)·a + alpha·b`` for every array, in each array's dtype; integer arrays
    (counters) are taken from the nearer end."""
    if len(a) != len(b):
        raise ValueError(f"the two copies have {len(a)} and {len(b)} weight arrays")
    out = []
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            raise ValueError(f"the two copies differ in shape: {x.shape} and {y.shape}")
        if x.dtype.kind != "f":
            out.append((y if alpha >= 0.5 else x).copy())
            continue
        blended = (1.0 - alpha) * x.astype(np.float64) + alpha * y.astype(np.float64)
        out.append(blended.astype(x.dtype))
    return out


def batchnorm_layers(model: Any) -> list[Any]:
    """Every BatchNormalization layer of ``model`` (nested models included), in order."""
    import keras

    return [layer for layer in _layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)]


def _layers(model: Any) -> Iterable[Any]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)


def recompute_batchnorm(model: Any, batches: Iterable[np.ndarray]) -> int:
    """Reset every BatchNorm layer's moving statistics and set them to the mean, over
    ``batches`` (images as the model takes them), of the batch statistics that training
    mode computes with the model's current weights. Returns the batches used; a model
    without BatchNorm is left as it is (0)."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, "float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, "float32"))
    seen = 0
    try:
        for x in batches:
            # moving = m·moving + (1 − m)·batch with m = n/(n + 1): the mean of n + 1 batches
            for layer in layers:
                layer.momentum = seen / (seen + 1)
            model(x, training=True)
            seen += 1
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    if not seen:
        raise ValueError("recomputing BatchNorm statistics needs at least one train batch")
    return seen
