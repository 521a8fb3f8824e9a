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
from dataclasses import dataclass

import keras
import numpy as np

from pipeline.seeding import seeded
from pipeline.tickets.conversion import plain_weights
from pipeline.tickets.masks import Masks

Weights = list[np.ndarray]
# (model, masks, weights, seed, granularity=...) -> (masks, weights)
Control = Callable[..., tuple[Masks, Weights]]

TICKET = "none"  # the ``control`` of a ticket itself: no control applied


@dataclass(frozen=True)
class ControlInfo:
    """A registered control: its function and how figures draw it."""

    name: str
    fn: Control
    marker: str  # matplotlib marker of its lines


_CONTROLS: dict[str, ControlInfo] = {}


def register_control(name: str, marker: str = "D") -> Callable[[Control], Control]:
    """Register ``fn`` as control ``name``. Its random draws are seeded per cell from the
    run seed and the name (:meth:`pipeline.experiment.cells.Cell.seed`), so adding a
    control never changes another's draws."""

    def wrap(fn: Control) -> Control:
        if name in _CONTROLS or name == TICKET:
            raise ValueError(f"control {name!r} is already registered")
        _CONTROLS[name] = ControlInfo(name, fn, marker)
        return fn

    return wrap


def list_controls() -> list[str]:
    """Registered control names, in registration order (the order of tables and figures)."""
    return list(_CONTROLS)


def control_marker(name: str) -> str:
    """Figure marker of a control; tickets are circles, unknown names diamonds."""
    if name == TICKET:
        return "o"
    info = _CONTROLS.get(name)
    return info.marker if info is not None else "D"


def apply_control(
    name: str,
    model: keras.Model,
    masks: Mapping[str, np.ndarray],
    weights: Sequence[np.ndarray],
    seed: int,
    granularity: str = "weights",
) -> tuple[Masks, Weights]:
    """Run control ``name``; feed the result to :func:`pipeline.tickets.rewind.rewind`.
    ``granularity`` is the ticket's (``prune.granularity``): a control of a channel ticket
    draws channels, not weights."""
    try:
        fn = _CONTROLS[name].fn
    except KeyError:
        raise ValueError(f"unknown control {name!r}; known: {', '.join(list_controls())}") from None
    return fn(model, dict(masks), list(weights), seed, granularity=granularity)


@register_control("reinit", marker="s")
def reinit(model: keras.Model, masks: Masks, weights: Weights, seed: int,
           granularity: str = "weights") -> tuple[Masks, Weights]:
    """Same mask, weights from a fresh initialization of the same architecture."""
    with seeded(seed):
        fresh = keras.models.clone_model(model, recursive=True)
    return masks, plain_weights(fresh)


@register_control("random_mask", marker="^")
def random_mask(
    model: keras.Model, masks: Masks, weights: Weights, seed: int,
    granularity: str = "weights",
) -> tuple[Masks, Weights]:
    """Same weights, each kernel's survivors moved to uniformly random positions (a channel
    ticket's kept channels to random channels of the same spaces)."""
    rng = np.random.default_rng(seed)
    if granularity == "channels":
        from pipeline.tickets.channel_pruning import random_channel_masks

        return random_channel_masks(model, masks, rng), weights
    out: Masks = {}
    for name in sorted(masks):
        mask = np.asarray(masks[name], dtype=bool)
        flat = np.zeros(mask.size, dtype=bool)
        flat[rng.choice(mask.size, size=int(mask.sum()), replace=False)] = True
        out[name] = flat.reshape(mask.shape)
    return out, weights
