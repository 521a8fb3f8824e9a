"""Control runs ("branches"): small registered functions keyed by name.

A control takes the masked model (for its structure), the ticket's masks and rewind
weights and a seed, and returns the masks and weights to train instead. A winning ticket
is a claim relative to these:

* ``reinit``: the same mask on a fresh random initialization (new seed);
* ``random_mask``: the rewind weights under a random mask with the same number of
  survivors in every kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

from pipeline.seeding import seeded
from pipeline.tickets.conversion import plain_weights
from pipeline.tickets.masks import Masks

Weights = list[np.ndarray]
Control = Callable[[keras.Model, Masks, Weights, int], tuple[Masks, Weights]]

_CONTROLS: dict[str, Control] = {}


def register_control(name: str) -> Callable[[Control], Control]:
    def wrap(fn: Control) -> Control:
        if name in _CONTROLS:
            raise ValueError(f"control {name!r} is already registered")
        _CONTROLS[name] = fn
        return fn

    return wrap


def list_controls() -> list[str]:
    return sorted(_CONTROLS)


def apply_control(
    name: str,
    model: keras.Model,
    masks: Mapping[str, np.ndarray],
    weights: Sequence[np.ndarray],
    seed: int,
) -> tuple[Masks, Weights]:
    """Run control ``name``; feed the result to :func:`pipeline.tickets.rewind.rewind`."""
    try:
        fn = _CONTROLS[name]
    except KeyError:
        raise ValueError(f"unknown control {name!r}; known: {', '.join(list_controls())}") from None
    return fn(model, dict(masks), list(weights), seed)


@register_control("reinit")
def reinit(model: keras.Model, masks: Masks, weights: Weights, seed: int) -> tuple[Masks, Weights]:
    """Same mask, weights from a fresh initialization of the same architecture."""
    with seeded(seed):
        fresh = keras.models.clone_model(model, recursive=True)
    return masks, plain_weights(fresh)


@register_control("random_mask")
def random_mask(
    model: keras.Model, masks: Masks, weights: Weights, seed: int
) -> tuple[Masks, Weights]:
    """Same weights, each kernel's survivors moved to uniformly random positions."""
    rng = np.random.default_rng(seed)
    out: Masks = {}
    for name in sorted(masks):
        mask = np.asarray(masks[name], dtype=bool)
        flat = np.zeros(mask.size, dtype=bool)
        flat[rng.choice(mask.size, size=int(mask.sum()), replace=False)] = True
        out[name] = flat.reshape(mask.shape)
    return out, weights
