"""Convert a built Keras model into its masked twin (same weights) and back for export.

Both directions rebuild the model with ``keras.models.clone_model`` (functional,
Sequential and nested models), swapping Conv2D / DepthwiseConv2D / Dense for their masked
twins or back, and keep layer names, so masks keyed by layer name carry over. Weight lists
differ only by one mask array after each masked layer's own weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import keras
import numpy as np

from pipeline.tickets.masked_layers import MASKED_TWIN, PLAIN_TWIN, is_masked


def iter_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every non-model layer, depth first, in ``model.layers`` order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def masked_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's masked layers in weight order; their names must be unique."""
    layers = [layer for layer in iter_layers(model) if is_masked(layer)]
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError("masked layers need unique names (masks are keyed by layer name)")
    return layers


def _swap(mapping: Mapping[type, type]):
    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        cls = mapping.get(type(layer), type(layer))
        return cls.from_config(layer.get_config())

    return clone


def _copy_weights(src: keras.Model, dst: keras.Model, to_masked: bool) -> None:
    dst_layers = {layer.name: layer for layer in iter_layers(dst)}
    for layer in iter_layers(src):
        weights = layer.get_weights()
        if not weights:
            continue
        target = dst_layers[layer.name]
        if to_masked and is_masked(target) and not is_masked(layer):
            weights = weights + [np.ones(weights[0].shape, dtype=weights[0].dtype)]
        elif not to_masked and is_masked(layer) and not is_masked(target):
            *rest, mask = weights
            weights = [rest[0] * mask, *rest[1:]]
        target.set_weights(weights)


def to_masked(model: keras.Model) -> keras.Model:
    """Masked twin of a built model: identical weights, all-ones masks."""
    twin = keras.models.clone_model(model, clone_function=_swap(MASKED_TWIN), recursive=True)
    _copy_weights(model, twin, to_masked=True)
    return twin


def to_plain(model: keras.Model) -> keras.Model:
    """Plain Keras copy of a masked model with the masks multiplied into the kernels."""
    plain = keras.models.clone_model(model, clone_function=_swap(PLAIN_TWIN), recursive=True)
    _copy_weights(model, plain, to_masked=False)
    return plain


def _weight_slots(model: keras.Model) -> list[tuple[keras.layers.Layer, int]]:
    """(layer, number of weights) for every layer that owns weights, in weight order."""
    return [(layer, len(layer.weights)) for layer in iter_layers(model) if layer.weights]


def plain_weights(model: keras.Model, weights: Sequence[np.ndarray] | None = None) -> list:
    """A masked model's weight list (default: its current weights) without the masks.

    Kernels come back multiplied by their masks, so the list loads into ``to_plain(model)``.
    """
    weights = list(model.get_weights() if weights is None else weights)
    out: list[np.ndarray] = []
    i = 0
    for layer, count in _weight_slots(model):
        chunk = weights[i : i + count]
        i += count
        if is_masked(layer):
            *rest, mask = chunk
            chunk = [rest[0] * mask, *rest[1:]]
        out.extend(chunk)
    if i != len(weights):
        raise ValueError(f"expected {i} weights for {model.name}, got {len(weights)}")
    return out


def full_weights(
    model: keras.Model,
    weights: Sequence[np.ndarray],
    masks: Mapping[str, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Weights for ``model.set_weights`` from a list with or without masks.

    ``weights`` may be the masked model's own list or its plain twin's (one array fewer per
    masked layer). ``masks`` (by layer name) override the masks in ``weights``; kernels are
    multiplied by the resulting masks. Missing masks in a plain list are all ones.
    """
    weights = list(weights)
    slots = _weight_slots(model)
    n_full = sum(count for _, count in slots)
    n_plain = n_full - sum(1 for layer, _ in slots if is_masked(layer))
    if len(weights) not in (n_full, n_plain):
        raise ValueError(
            f"{model.name} takes {n_full} weights (or {n_plain} without masks), "
            f"got {len(weights)}"
        )
    has_masks = len(weights) == n_full and n_full != n_plain
    masks = masks or {}
    out: list[np.ndarray] = []
    i = 0
    for layer, count in slots:
        own = count - 1 if is_masked(layer) and not has_masks else count
        chunk = [np.asarray(w) for w in weights[i : i + own]]
        i += own
        if is_masked(layer):
            kernel = chunk[0]
            if layer.name in masks:
                mask = np.asarray(masks[layer.name]).astype(kernel.dtype)
            elif has_masks:
                mask = chunk[-1].astype(kernel.dtype)
            else:
                mask = np.ones(kernel.shape, dtype=kernel.dtype)
            if mask.shape != kernel.shape:
                raise ValueError(f"{layer.name}: mask shape {mask.shape} != kernel {kernel.shape}")
            body = chunk[:-1] if has_masks else chunk
            chunk = [kernel * mask, *body[1:], mask]
        out.extend(chunk)
    return out


def kernel_positions(model: keras.Model) -> dict[str, int]:
    """Index of each masked layer's kernel in the model's *plain* weight list."""
    positions: dict[str, int] = {}
    i = 0
    for layer, count in _weight_slots(model):
        if is_masked(layer):
            positions[layer.name] = i
            count -= 1
        i += count
    return positions
