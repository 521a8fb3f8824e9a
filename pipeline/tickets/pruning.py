"""Magnitude pruning: iterative (IMP levels) and one-shot, global or layerwise.

Targets are counts relative to each kernel's full size, not to what survived the last
level, so rounding never accumulates: after level ``L`` a kernel pruned at fraction ``f``
keeps exactly ``round(size * (1 - f) ** L)`` weights (layerwise), and the pooled kernels
together keep exactly ``round(pool_size * (1 - f) ** L)`` (global). Only surviving weights
compete; pruned ones stay pruned. Ties at the threshold are broken by position, so the
count is always exact.

Floors (``min_layer_density``, ``keep_depthwise_channels``) reserve each kernel's
largest-magnitude survivors before the threshold is drawn; under ``global`` the pool still
keeps its exact count, so the reserved weights are paid for by the other kernels' smallest
ones. Only when the reserved weights alone exceed a group's count does the group keep more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

from pipeline.tickets.channel_pruning import channel_masks_at_level
from pipeline.tickets.conversion import masked_layers
from pipeline.tickets.masks import Masks, get_masks
from pipeline.tickets.policy import KernelInfo, PruningPolicy, describe_kernels


def _keep_top(scores: np.ndarray, alive: np.ndarray, count: int) -> np.ndarray:
    """Boolean vector keeping the ``count`` largest scores among ``alive`` entries."""
    count = min(count, int(alive.sum()))
    keep = np.zeros(scores.shape, dtype=bool)
    if count <= 0:
        return keep
    ranked = np.where(alive, scores, -1.0)  # pruned entries rank below every |w| >= 0
    idx = np.argpartition(-ranked, count - 1)[:count]
    keep[idx] = True
    return keep


def prune_groups(
    kernels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    groups: Sequence[tuple[Sequence[str], int]],
    reserved: Mapping[str, np.ndarray] | None = None,
) -> Masks:
    """Magnitude-prune each group of kernels jointly to its target count of survivors.

    ``groups`` holds ``(layer names, weights to keep)``; kernels in no group keep their mask.
    ``reserved`` (bool arrays by layer name) marks surviving weights that are kept whatever
    their magnitude; they count towards their group's target.
    """
    reserved = reserved or {}
    out = {name: np.asarray(m, dtype=bool).copy() for name, m in masks.items()}
    for names, count in groups:
        if not names:
            continue
        scores = np.concatenate([np.abs(np.asarray(kernels[n], np.float64)).ravel() for n in names])
        alive = np.concatenate([np.asarray(masks[n], dtype=bool).ravel() for n in names])
        forced = np.concatenate([
            np.asarray(reserved[n], dtype=bool).ravel() if n in reserved
            else np.zeros(out[n].size, dtype=bool)
            for n in names
        ]) & alive
        keep = forced | _keep_top(scores, alive & ~forced, count - int(forced.sum()))
        start = 0
        for name in names:
            size = out[name].size
            out[name] = keep[start : start + size].reshape(out[name].shape)
            start += size
    return out


def _channel_keepers(kernel: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """The largest surviving weight of every depthwise channel (axis 2 of [kh, kw, C, M])."""
    ranked = np.moveaxis(np.where(alive, np.abs(kernel), -1.0), 2, 0)
    flat = ranked.reshape(ranked.shape[0], -1)
    best = flat.argmax(axis=1)
    keep = np.zeros(flat.shape, dtype=bool)
    rows = np.arange(flat.shape[0])
    keep[rows, best] = flat[rows, best] >= 0  # a channel already emptied stays empty
    return np.moveaxis(keep.reshape(ranked.shape), 0, 2)


def reserved_weights(
    infos: Sequence[KernelInfo],
    policy: PruningPolicy,
    kernels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Surviving weights the policy's floors keep in each prunable kernel, by layer name.

    ``min_layer_density``: the ``policy.floor_count`` largest survivors of every kernel;
    ``keep_depthwise_channels``: the largest survivor of every depthwise channel.
    """
    out = {}
    for t in infos:
        floor = policy.floor_count(t)
        channels = policy.keep_depthwise_channels and t.kind == "depthwise" and (
            policy.is_prunable(t)) and len(t.shape) == 4
        if not floor and not channels:
            continue
        scores = np.abs(np.asarray(kernels[t.name], np.float64))
        alive = np.asarray(masks[t.name], dtype=bool)
        keep = _keep_top(scores.ravel(), alive.ravel(), floor).reshape(alive.shape)
        if channels:
            keep |= _channel_keepers(scores, alive)
        out[t.name] = keep
    return out


def plan_groups(
    infos: Sequence[KernelInfo], policy: PruningPolicy, level: float
) -> list[tuple[list[str], int]]:
    """Pruning groups and survivor counts for ``level`` under ``policy``."""
    groups: list[tuple[list[str], int]] = []
    pool = [t for t in infos if policy.pooled(t)]
    if policy.strategy == "global" and pool:
        total = sum(t.size for t in pool)
        keep = (1.0 - policy.fraction_per_level) ** level
        groups.append(([t.name for t in pool], round(total * keep)))
        rest = [t for t in infos if policy.is_prunable(t) and not policy.pooled(t)]
    else:
        rest = [t for t in infos if policy.is_prunable(t)]
    groups.extend(([t.name], round(t.size * policy.density(t, level))) for t in rest)
    return groups


def _kernels(model: keras.Model) -> dict[str, np.ndarray]:
    return {layer.name: layer.kernel.numpy() for layer in masked_layers(model)}


def masks_at_level(
    model: keras.Model,
    policy: PruningPolicy,
    level: float,
    masks: Mapping[str, np.ndarray] | None = None,
    kernels: Mapping[str, np.ndarray] | None = None,
) -> Masks:
    """Masks for IMP level ``level`` from the model's (trained) kernels and current masks.

    Level ``L`` keeps ``(1 - fraction_per_level) ** L`` of the pooled prunable weights; kernels with
    a role-specific fraction keep ``(1 - that fraction) ** L`` each. ``masks`` and
    ``kernels`` default to the model's own. The policy's floors hold at every level. With
    ``granularity: channels`` whole channels go (:mod:`pipeline.tickets.channel_pruning`).
    """
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    infos = describe_kernels(model)
    masks = get_masks(model) if masks is None else masks
    kernels = _kernels(model) if kernels is None else kernels
    if policy.granularity == "channels":
        return channel_masks_at_level(model, policy, level, masks, kernels)
    return prune_groups(kernels, masks, plan_groups(infos, policy, level),
                        reserved_weights(infos, policy, kernels, masks))


def imp_masks(model: keras.Model, policy: PruningPolicy, level: int) -> Masks:
    """One IMP step: prune the model's current masks down to level ``level`` (>= 1)."""
    if level < 1 or int(level) != level:
        raise ValueError(f"IMP levels are whole numbers >= 1, got {level}")
    return masks_at_level(model, policy, level)


def one_shot_masks(model: keras.Model, policy: PruningPolicy, sparsity: float) -> Masks:
    """Prune straight to ``sparsity`` (fraction of the pooled prunable weights removed).

    Kernels with a role-specific fraction get the density IMP would give them when the
    pool reaches ``sparsity``: the level is ``log(1 - sparsity) / log(1 - fraction_per_level)``.
    """
    return masks_at_level(model, policy, policy.level_for_sparsity(sparsity))
