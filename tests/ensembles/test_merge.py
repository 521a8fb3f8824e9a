"""Merged masks: union and intersection, kernel by kernel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.ensembles.merge import density, merge_masks


def _disjoint(rng: np.random.Generator) -> tuple[dict, dict]:
    a, b = {}, {}
    for name, shape in (("conv", (3, 3, 4, 8)), ("fc", (32, 10))):
        owner = rng.integers(0, 3, size=shape)  # 0: a, 1: b, 2: neither
        a[name], b[name] = owner == 0, owner == 1
    return a, b


def test_union_of_disjoint_masks_has_the_sum_of_their_densities():
    a, b = _disjoint(np.random.default_rng(0))
    union = merge_masks(a, b, "union")
    assert density(union) == pytest.approx(density(a) + density(b), abs=1e-15)
    assert density(merge_masks(a, b, "intersection")) == 0.0
    for name in a:
        np.testing.assert_array_equal(union[name], a[name] | b[name])


def test_merging_a_mask_with_itself_gives_it_back():
    a, _ = _disjoint(np.random.default_rng(1))
    for how in ("union", "intersection"):
        merged = merge_masks(a, a, how)
        assert all(np.array_equal(merged[n], a[n]) for n in a)


def test_masks_of_different_models_are_refused():
    a, b = _disjoint(np.random.default_rng(2))
    with pytest.raises(ValueError, match="different kernels"):
        merge_masks(a, {"conv": b["conv"]}, "union")
    with pytest.raises(ValueError, match="unknown merge"):
        merge_masks(a, b, "xor")
