"""Sparsity report: weights remaining per tensor, for prunable kernels and overall.

Definitions (fractions in 0..1):

* ``weights_remaining_prunable``: surviving / total weights over the kernels the policy
  may prune;
* ``weights_remaining_overall``: surviving / total over every parameter tensor of the
  model (kernels, biases, BatchNorm gamma and beta, ...), excluding masks and BatchNorm
  moving statistics. Tensors without a mask count as fully remaining.

A kernel weight "remains" when its mask is 1 (a trained weight that happens to be 0.0 is
not pruned).

Dead structure, counted because a ticket with it is a different architecture:

* ``layers_emptied``: masked kernels with no weight left;
* ``depthwise_channels_emptied``: channels ``c`` of DepthwiseConv2D kernels
  (``[kh, kw, C, M]``) whose ``mask[:, :, c, :]`` is all zero, in every depthwise layer
  (emptied layers included: each of their channels counts).

Cost: ``flops_remaining`` and ``dense_flops``, the kernels' multiply-adds per image with
the surviving weights and with all of them (:mod:`pipeline.tickets.flops`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd

from pipeline.tickets.conversion import iter_layers
from pipeline.tickets.flops import FlopsCount, count_flops
from pipeline.tickets.masked_layers import LAYER_KIND, is_masked
from pipeline.tickets.masks import get_masks
from pipeline.tickets.policy import PruningPolicy, describe_kernels

COLUMNS = ["tensor", "layer", "kind", "role", "prunable", "size", "remaining", "fraction"]


@dataclass
class SparsityReport:
    table: pd.DataFrame  # one row per tensor, then "TOTAL prunable" and "TOTAL overall"
    weights_remaining_prunable: float
    weights_remaining_overall: float
    emptied_layers: list[str] = field(default_factory=list)  # in model order
    emptied_channels: dict[str, int] = field(default_factory=dict)  # depthwise layer -> count
    flops: FlopsCount = field(default_factory=FlopsCount)

    @property
    def layers_emptied(self) -> int:
        return len(self.emptied_layers)

    @property
    def depthwise_channels_emptied(self) -> int:
        return sum(self.emptied_channels.values())

    def summary(self) -> dict[str, float | int]:
        return {
            "weights_remaining_prunable": self.weights_remaining_prunable,
            "weights_remaining_overall": self.weights_remaining_overall,
            "layers_emptied": self.layers_emptied,
            "depthwise_channels_emptied": self.depthwise_channels_emptied,
            "flops_remaining": self.flops.flops_remaining,
            "dense_flops": self.flops.dense_flops,
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


def emptied_channels(mask: np.ndarray) -> int:
    """Channels of a depthwise ``[kh, kw, C, M]`` mask with no weight left."""
    alive = np.asarray(mask) != 0
    return int(np.count_nonzero(~alive.any(axis=(0, 1, 3))))


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
    dead_layers: list[str] = []
    dead_channels: dict[str, int] = {}
    for layer in iter_layers(model):
        for path, var in _parameter_tensors(layer):
            size = int(np.prod(var.shape))
            is_kernel = is_masked(layer) and var is layer.kernel
            if is_kernel:
                info = infos[layer.name]
                remaining = int(np.count_nonzero(masks[layer.name]))
                kind, role = LAYER_KIND[type(layer)], info.role or ""
                prunable = policy.is_prunable(info)
                if remaining == 0 and size > 0:
                    dead_layers.append(layer.name)
                if kind == "depthwise" and len(info.shape) == 4:
                    dead = emptied_channels(masks[layer.name])
                    if dead:
                        dead_channels[layer.name] = dead
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
        emptied_layers=dead_layers,
        emptied_channels=dead_channels,
        flops=count_flops(model, masks),
    )
