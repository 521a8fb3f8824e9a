"""A source network's weights and masks on the target: everything kept but the classifier.

The target model is the source's architecture built for the target's classes with a seed
derived from the replicate's, so its classifier is a fresh, seeded initialization, the
same for every level and rewind point of a replicate. Every other weight must match the
source's shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

from pipeline.models import CLASSIFIER
from pipeline.tickets.masks import Masks


def classifier_positions(model: keras.Model) -> list[int]:
    """Indices in ``model.get_weights()`` of the classifier's weights (kernel, bias)."""
    try:
        owned = {id(v) for v in model.get_layer(CLASSIFIER).weights}
    except ValueError:
        raise ValueError(f"{model.name} has no layer named {CLASSIFIER!r}") from None
    return [i for i, v in enumerate(model.weights) if id(v) in owned]


def transfer_weights(source: Sequence[np.ndarray], target: keras.Model) -> list[np.ndarray]:
    """``source`` (a plain weight list of the source model) with the classifier's weights
    replaced by ``target``'s own (its fresh initialization)."""
    fresh = target.get_weights()
    if len(source) != len(fresh):
        raise ValueError(f"the source model has {len(source)} weights, the target "
                         f"{len(fresh)}: not the same architecture")
    head = set(classifier_positions(target))
    out = []
    for i, (old, new) in enumerate(zip(source, fresh, strict=True)):
        if i in head:
            out.append(np.array(new))
        elif old.shape != new.shape:
            raise ValueError(f"weight {target.weights[i].path}: source shape {old.shape}, "
                             f"target {new.shape}")
        else:
            out.append(np.array(old))
    return out


def transfer_masks(source: Mapping[str, np.ndarray], target_shapes: Mapping[str, tuple],
                   classifier: str, seed: int) -> Masks:
    """The source's masks for a target model whose masked kernels have ``target_shapes``;
    the classifier's is all ones (``dense``) or a seeded random mask keeping the source
    classifier's fraction of weights (``random``)."""
    if set(source) != set(target_shapes):
        raise ValueError(f"the source masks cover {len(source)} kernels, the target model "
                         f"has {len(target_shapes)}")
    out: Masks = {}
    for name, shape in target_shapes.items():
        mask = np.asarray(source[name], dtype=bool)
        if name == CLASSIFIER:
            out[name] = new_classifier_mask(mask, tuple(shape), classifier, seed)
        elif mask.shape != tuple(shape):
            raise ValueError(f"mask {name}: source shape {mask.shape}, target {tuple(shape)}")
        else:
            out[name] = mask
    return out


def new_classifier_mask(source: np.ndarray, shape: tuple, how: str, seed: int) -> np.ndarray:
    if how == "dense":
        return np.ones(shape, dtype=bool)
    if how != "random":
        raise ValueError(f"transfer.classifier: unknown {how!r} (dense or random)")
    size = int(np.prod(shape))
    keep = int(round(float(source.mean()) * size))
    flat = np.zeros(size, dtype=bool)
    flat[np.random.default_rng(seed).choice(size, size=keep, replace=False)] = True
    return flat.reshape(shape)
