"""Multiply-adds per image of a (masked) model, counting only the weights that remain.

The convention of ShrinkBench (Blalock et al. 2020) and of most pruning papers: a weight
of a Conv2D, DepthwiseConv2D or Dense kernel takes part in one multiply-add at every output
position of its layer, so a layer costs ``weights × output positions`` per image, where the
output positions are the layer's output height × width (convolutions, at the model's input
size) or 1 (a Dense layer on a vector). A pruned weight costs nothing. BatchNorm,
activations, additions and pooling are not counted: they are a small share of MobileNetV2's
cost and no pruning removes them.

A weight remains when its mask is 1 (masked layers, or the ``masks`` given by layer name)
or, in a plain layer without a mask, when it is not 0.0 (an exported ticket).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import keras
import numpy as np

from pipeline.tickets.conversion import iter_layers
from pipeline.tickets.masked_layers import is_masked

KINDS = ("conv", "depthwise", "dense")


def layer_kind(layer: keras.layers.Layer) -> str | None:
    """``conv``, ``depthwise`` or ``dense`` for the layers whose kernels are counted."""
    # DepthwiseConv2D is not a Conv2D subclass in Keras 3, but test it first anyway
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, keras.layers.Conv2D):
        return "conv"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return None


@dataclass(frozen=True)
class LayerFlops:
    layer: str
    kind: str
    positions: int  # output positions per image
    weights: int  # kernel size
    remaining: int  # kernel weights that remain

    @property
    def dense_macs(self) -> int:
        return self.weights * self.positions

    @property
    def macs(self) -> int:
        return self.remaining * self.positions


@dataclass(frozen=True)
class FlopsCount:
    layers: list[LayerFlops] = field(default_factory=list)  # in model order

    @property
    def flops_remaining(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def dense_flops(self) -> int:
        return sum(layer.dense_macs for layer in self.layers)

    @property
    def fraction(self) -> float:
        return self.flops_remaining / self.dense_flops if self.dense_flops else 1.0

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """``kind -> (remaining, dense)`` multiply-adds, for the kinds the model has."""
        out: dict[str, tuple[int, int]] = {}
        for layer in self.layers:
            left, total = out.get(layer.kind, (0, 0))
            out[layer.kind] = (left + layer.macs, total + layer.dense_macs)
        return out


def _positions(layer: keras.layers.Layer) -> int:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"{layer.name}: the output shape is unknown (a layer must be called "
                         f"once, in a built functional model, to count its multiply-adds)"
                         ) from exc
    inner = shape[1:-1]
    if any(d is None for d in inner):
        raise ValueError(f"{layer.name}: output shape {tuple(shape)} is not static")
    return int(np.prod(inner)) if inner else 1


def _remaining(layer: keras.layers.Layer, masks: Mapping[str, np.ndarray] | None) -> int:
    if masks is not None and layer.name in masks:
        return int(np.count_nonzero(masks[layer.name]))
    if is_masked(layer):
        return int(np.count_nonzero(layer.mask.numpy()))
    return int(np.count_nonzero(layer.kernel.numpy()))


def count_flops(model: keras.Model,
                masks: Mapping[str, np.ndarray] | None = None) -> FlopsCount:
    """The multiply-adds per image of ``model``'s kernels, dense and remaining."""
    layers = []
    for layer in iter_layers(model):
        kind = layer_kind(layer)
        if kind is None:
            continue
        layers.append(LayerFlops(layer.name, kind, _positions(layer),
                                 int(np.prod(layer.kernel.shape)), _remaining(layer, masks)))
    return FlopsCount(layers)
