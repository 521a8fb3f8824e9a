"""Structured pruning (``prune.granularity: channels``): whole channels, by kernel L1 norm.

The unit is channel ``j`` of a channel space (:mod:`pipeline.models.channel_spaces`): the
output slice ``[..., j]`` of every Conv2D and Dense kernel that writes the space and the
slice ``[:, :, j, :]`` of every depthwise kernel in it. In MobileNetV2 that is one expanded
channel of an inverted-residual block (its expansion filter and its depthwise filter), or
one channel of a residual chain (that filter in every projection feeding it). A channel's
score is the L1 norm of its surviving weights over those slices; a pruned channel scores
0 and stays pruned.

Each space keeps ``round(C × density)`` of its ``C`` channels at level ``L``, where the
density is the policy's for the convolution that opens the space (``(1 - f) ** L``), and at
least one channel (or ``ceil(C × min_layer_density)``). Counts are relative to ``C``, so
rounding never accumulates over levels. Spaces holding a kernel the policy does not prune
(the first convolution at ``first_conv_fraction: 0``, an excluded layer) and frozen
spaces (the logits) keep every channel. The random-mask control of a channel ticket draws
the same number of channels per space at random (:func:`random_channel_masks`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np

from pipeline.models.channel_spaces import ChannelGraph, ChannelSpace
from pipeline.tickets.masks import Masks
from pipeline.tickets.policy import KernelInfo, PruningPolicy, describe_kernels


def _slices(space: ChannelSpace) -> list[tuple[str, int]]:
    """(kernel layer, channel axis) of every kernel whose slices make the space's channels."""
    return [(n, -1) for n in space.producers] + [(n, 2) for n in space.depthwise]


def _per_channel(array: np.ndarray, axis: int) -> np.ndarray:
    """``array`` as [channel, everything else]."""
    moved = np.moveaxis(np.asarray(array), axis, 0)
    return moved.reshape(moved.shape[0], -1)


def _set_channels(mask: np.ndarray, axis: int, keep: np.ndarray) -> np.ndarray:
    shape = [1] * mask.ndim
    shape[axis] = keep.size
    return mask & keep.reshape(shape)


def prunable_spaces(model: keras.Model, policy: PruningPolicy
                    ) -> list[tuple[ChannelSpace, KernelInfo]]:
    """The spaces whose channels may be pruned, each with the kernel of the convolution
    that opens it (whose per-level fraction the space follows)."""
    infos = {t.name: t for t in describe_kernels(model)}
    out = []
    for space in ChannelGraph(model).spaces.values():
        names = [n for n, _ in _slices(space)]
        if space.frozen or not space.producers or any(
                n not in infos or not policy.is_prunable(infos[n]) for n in names):
            continue
        out.append((space, infos[space.producers[0]]))
    return out


def channel_masks_at_level(model: keras.Model, policy: PruningPolicy, level: float,
                           masks: Mapping[str, np.ndarray],
                           kernels: Mapping[str, np.ndarray]) -> Masks:
    """Masks for IMP level ``level`` with whole channels pruned (see the module docstring)."""
    out = {name: np.asarray(m, dtype=bool).copy() for name, m in masks.items()}
    for space, opener in prunable_spaces(model, policy):
        score = np.zeros(space.channels)
        alive = np.zeros(space.channels, bool)
        for name, axis in _slices(space):
            mask = _per_channel(out[name], axis)
            score += np.abs(_per_channel(kernels[name], axis) * mask).sum(axis=1)
            alive |= mask.any(axis=1)
        count = round(space.channels * policy.density(opener, level))
        if policy.min_layer_density:
            count = max(count, math.ceil(space.channels * policy.min_layer_density))
        count = min(max(count, 1), int(alive.sum()))
        ranked = np.where(alive, score, -1.0)
        keep = np.zeros(space.channels, bool)
        keep[np.argsort(-ranked, kind="stable")[:count]] = True
        for name, axis in _slices(space):
            out[name] = _set_channels(out[name], axis, keep)
    return out


def random_channel_masks(model: keras.Model, masks: Mapping[str, np.ndarray],
                         rng: np.random.Generator) -> Masks:
    """The random-mask control of a channel ticket: in every space the ticket pruned, as
    many channels as it kept, drawn at random and kept whole (as the ticket keeps its own);
    kernels outside those spaces keep their masks."""
    out = {name: np.asarray(m, dtype=bool).copy() for name, m in masks.items()}
    for space in ChannelGraph(model).spaces.values():
        slices = [(n, axis) for n, axis in _slices(space) if n in out]
        if space.frozen or not slices:
            continue
        alive = np.zeros(space.channels, bool)
        for name, axis in slices:
            alive |= _per_channel(out[name], axis).any(axis=1)
        if alive.all():
            continue
        keep = np.zeros(space.channels, bool)
        keep[rng.choice(space.channels, size=int(alive.sum()), replace=False)] = True
        for name, axis in slices:
            whole = np.ones_like(out[name])
            out[name] = _set_channels(whole, axis, keep)
    return out
