"""Network slimming's structured mask: the channels whose BatchNorm scale |γ| is smallest.

You et al. draw their early-bird tickets this way (after Liu et al. 2017): one threshold
over the scales of every BatchNorm layer prunes ``ratio`` of all channels. The mask is a
dict of boolean vectors keyed by BatchNorm layer name, so the series of
:mod:`pipeline.early_bird.series` apply to it as to weight masks.
"""

from __future__ import annotations

import keras
import numpy as np

from pipeline.models.batch_norm import scale_layers


def channel_masks(model: keras.Model, ratio: float) -> dict[str, np.ndarray]:
    """Keep all but the ``ratio`` of channels with the smallest |γ| over the whole model
    (ties broken by model order, so the same scales give the same mask)."""
    layers = scale_layers(model)
    if not layers:
        raise ValueError("early_bird.channel_ratio: the model has no BatchNormalization scales")
    names = sorted(layer.name for layer in layers)
    by_name = {layer.name: layer for layer in layers}
    scales = [np.abs(keras.ops.convert_to_numpy(by_name[n].gamma)).ravel() for n in names]
    everything = np.concatenate(scales)
    keep = np.ones(everything.size, bool)
    keep[np.argsort(everything, kind="stable")[:int(round(ratio * everything.size))]] = False
    bounds = np.cumsum([s.size for s in scales])[:-1]
    return dict(zip(names, np.split(keep, bounds), strict=True))
