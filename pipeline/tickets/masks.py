"""Masks as ``dict[layer name, bool array]``: read them from and write them into a model."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from pipeline.tickets.conversion import masked_layers

Masks = dict[str, np.ndarray]


def get_masks(model: keras.Model) -> Masks:
    """Boolean mask of every masked layer, keyed by layer name."""
    return {layer.name: np.asarray(layer.mask.numpy()) != 0 for layer in masked_layers(model)}


def set_masks(model: keras.Model, masks: Mapping[str, np.ndarray], strict: bool = True) -> None:
    """Write masks into a masked model and zero the masked kernel entries.

    With ``strict`` every masked layer must get a mask; otherwise layers without one keep
    theirs.
    """
    layers = {layer.name: layer for layer in masked_layers(model)}
    unknown = sorted(set(masks) - set(layers))
    if unknown:
        raise KeyError(f"{model.name} has no masked layer named {unknown[0]!r}")
    missing = sorted(set(layers) - set(masks))
    if strict and missing:
        raise KeyError(f"no mask given for layer {missing[0]!r}")
    for name, mask in masks.items():
        layer = layers[name]
        mask = np.asarray(mask)
        if tuple(mask.shape) != tuple(layer.kernel.shape):
            raise ValueError(f"mask for {name} has shape {mask.shape}, not {layer.kernel.shape}")
        value = mask.astype(layer.mask.dtype) != 0
        layer.mask.assign(value.astype(layer.mask.dtype))
        layer.kernel.assign(layer.kernel.numpy() * value)


def apply_masks(model: keras.Model) -> None:
    """Zero every kernel entry whose mask is 0 (after a raw ``set_weights``, say)."""
    for layer in masked_layers(model):
        layer.kernel.assign(layer.kernel.numpy() * (layer.mask.numpy() != 0))


def ones_masks(model: keras.Model) -> Masks:
    """All-true masks for every masked layer."""
    return {layer.name: np.ones(layer.kernel.shape, dtype=bool) for layer in masked_layers(model)}


def count_remaining(masks: Mapping[str, np.ndarray]) -> int:
    return int(sum(int(np.count_nonzero(m)) for m in masks.values()))
