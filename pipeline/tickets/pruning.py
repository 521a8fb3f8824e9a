"""Magnitude pruning: iterative (IMP levels) and one-shot, global or layerwise.

Targets are counts relative to each kernel's full size, not to what survived the last
level, so rounding never accumulates: after level ``L`` a kernel pruned at fraction ``f``
keeps exactly ``round(size * (1 - f) ** L)`` weights (layerwise), and the pooled kernels
together keep exactly ``round(pool_size * (1 - f) ** L)`` (global). Only surviving weights
compete; pruned ones stay pruned. Ties at the threshold are broken by position, so the
count is always exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

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
) -> Masks:
    """Magnitude-prune each group of kernels jointly to its target count of survivors.

    ``groups`` holds ``(layer names, weights to keep)``; kernels in no group keep their mask.
    """
    out = {name: np.asarray(m, dtype=bool).copy() for name, m in masks.items()}
    for names, count in groups:
        if not names:
            continue
        scores = np.concatenate([np.abs(np.asarray(kernels[n], np.float64)).ravel() for n in names])
        alive = np.concatenate([np.asarray(masks[n], dtype=bool).ravel() for n in names])
        keep = _keep_top(scores, alive, count)
        start = 0
        for name in names:
            size = out[name].size
            out[name] = keep[start : start + size].reshape(out[name].shape)
            start += size
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
    ``kernels`` default to the model's own.
    """
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    infos = describe_kernels(model)
    masks = get_masks(model) if masks is None else masks
    kernels = _kernels(model) if kernels is None else kernels
    return prune_groups(kernels, masks, plan_groups(infos, policy, level))


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
