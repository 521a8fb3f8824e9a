"""Sparsity report: weights remaining per tensor, for prunable kernels and overall.

Definitions (fractions in 0..1):

* ``weights_remaining_prunable``: surviving / total weights over the kernels the policy
  may prune;
* ``weights_remaining_overall``: surviving / total over every parameter tensor of the
  model (kernels, biases, BatchNorm gamma and beta, ...), excluding masks and BatchNorm
  moving statistics. Tensors without a mask count as fully remaining.

A kernel weight "remains" when its mask is 1 (a trained weight that happens to be 0.0 is
not pruned).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd

from pipeline.tickets.conversion import iter_layers
from pipeline.tickets.masked_layers import LAYER_KIND, is_masked
from pipeline.tickets.masks import get_masks
from pipeline.tickets.policy import PruningPolicy, describe_kernels

COLUMNS = ["tensor", "layer", "kind", "role", "prunable", "size", "remaining", "fraction"]


@dataclass
class SparsityReport:
    table: pd.DataFrame  # one row per tensor, then "TOTAL prunable" and "TOTAL overall"
    weights_remaining_prunable: float
    weights_remaining_overall: float

    def summary(self) -> dict[str, float]:
        return {
            "weights_remaining_prunable": self.weights_remaining_prunable,
            "weights_remaining_overall": self.weights_remaining_overall,
        }

    def to_csv(self) -> str:
        return self.table.to_csv(index=False)

    def __str__(self) -> str:
        return self.table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def _parameter_tensors(layer: keras.layers.Layer) -> list[tuple[str, Any]]:
    skip = set()
    if is_masked(layer):
        skip.add(id(layer.mask))
    if isinstance(layer, keras.layers.BatchNormalization):
        skip.update({id(layer.moving_mean), id(layer.moving_variance)})
    return [(v.path, v) for v in layer.weights if id(v) not in skip]


def sparsity_report(
    model: keras.Model,
    policy: PruningPolicy | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
) -> SparsityReport:
    """Report for a masked model with ``masks`` (default: its own) under ``policy``."""
    policy = policy or PruningPolicy()
    masks = get_masks(model) if masks is None else masks
    infos = {t.name: t for t in describe_kernels(model)}
    rows = []
    for layer in iter_layers(model):
        for path, var in _parameter_tensors(layer):
            size = int(np.prod(var.shape))
            is_kernel = is_masked(layer) and var is layer.kernel
            if is_kernel:
                info = infos[layer.name]
                remaining = int(np.count_nonzero(masks[layer.name]))
                kind, role = LAYER_KIND[type(layer)], info.role or ""
                prunable = policy.is_prunable(info)
            else:
                remaining = size
                kind = "batchnorm" if isinstance(layer, keras.layers.BatchNormalization) else (
                    "bias" if path.endswith("bias") else "other")
                role, prunable = "", False
            rows.append([path, layer.name, kind, role, prunable, size, remaining])
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    pr = table[table.prunable]
    totals = {
        "prunable": (int(pr["size"].sum()), int(pr["remaining"].sum())),
        "overall": (int(table["size"].sum()), int(table["remaining"].sum())),
    }
    for label, (size, remaining) in totals.items():
        table.loc[len(table)] = [f"TOTAL {label}", "", "total", "", label == "prunable",
                                 size, remaining]
    table["fraction"] = table["remaining"] / table["size"].clip(lower=1)
    prunable_size, prunable_left = totals["prunable"]
    overall_size, overall_left = totals["overall"]
    return SparsityReport(
        table=table,
        weights_remaining_prunable=prunable_left / prunable_size if prunable_size else 1.0,
        weights_remaining_overall=overall_left / overall_size if overall_size else 1.0,
    )
