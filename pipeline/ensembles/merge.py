"""Merged tickets: the union or the intersection of two tickets' masks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.tickets.masks import Masks


def merge_masks(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], how: str) -> Masks:
    """Kernel by kernel, ``a | b`` (``union``) or ``a & b`` (``intersection``)."""
    if set(a) != set(b):
        raise ValueError("the two tickets mask different kernels: not the same model")
    op = {"union": np.logical_or, "intersection": np.logical_and}.get(how)
    if op is None:
        raise ValueError(f"unknown merge {how!r} (union or intersection)")
    out: Masks = {}
    for name in a:
        if a[name].shape != b[name].shape:
            raise ValueError(f"mask {name}: shapes {a[name].shape} and {b[name].shape}")
        out[name] = op(np.asarray(a[name], bool), np.asarray(b[name], bool))
    return out


def density(masks: Mapping[str, np.ndarray]) -> float:
    """Fraction of the masked kernels' weights kept."""
    return sum(int(np.count_nonzero(m)) for m in masks.values()) / sum(
        m.size for m in masks.values())
