"""The output layer's default rate, the per-kernel floors and dead structure in the report."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from pipeline.config import ConfigError
from pipeline.tickets import (
    PruningPolicy,
    describe_kernels,
    get_masks,
    imp_masks,
    one_shot_masks,
    ones_masks,
    set_masks,
    sparsity_report,
    to_masked,
)
from tests.support.digits_nets import tiny_mixed_net


def _tiny(scale_dw: float = 1e-4, channel: int | None = None) -> keras.Model:
    """The tiny net with its depthwise kernel (or one of its channels) made negligible, so
    that global magnitude pruning takes it first."""
    model = to_masked(tiny_mixed_net())
    dw = model.get_layer("dw")
    kernel = dw.kernel.numpy()
    if channel is None:
        kernel *= scale_dw
    else:
        kernel[:, :, channel, :] *= scale_dw
    dw.kernel.assign(kernel)
    return model


def _floor(size: int, density: float) -> int:
    return math.ceil(size * density - 1e-9)


def test_classifier_is_pruned_at_half_the_rate_by_default() -> None:
    model = to_masked(tiny_mixed_net())
    infos = {t.name: t for t in describe_kernels(model)}
    head = infos["predictions"]
    assert head.role == "classifier"
    policy = PruningPolicy(fraction_per_level=0.2)
    assert policy.classifier_fraction is None
    assert policy.fraction_for(head) == pytest.approx(0.1)
    assert not policy.pooled(head) and policy.pooled(infos["fc"])
    masks = imp_masks(model, policy, 2)
    assert masks["predictions"].sum() == round(head.size * 0.9**2)
    # equal to fraction_per_level: pruned like the others, in the global pool
    alike = PruningPolicy(fraction_per_level=0.2, classifier_fraction=0.2)
    assert alike.fraction_for(head) == 0.2 and alike.pooled(head)
    never = PruningPolicy(fraction_per_level=0.2, classifier_fraction=0.0)
    assert imp_masks(model, never, 3)["predictions"].all()


def test_global_pruning_empties_a_layer_that_min_layer_density_keeps() -> None:
    model = _tiny()
    infos = describe_kernels(model)
    bare = PruningPolicy(strategy="global", fraction_per_level=0.5)
    masks = imp_masks(model, bare, 2)
    assert not masks["dw"].any()  # the premise: global ranking empties the depthwise layer
    set_masks(model, masks)
    report = sparsity_report(model, bare)
    assert report.layers_emptied == 1 and report.emptied_layers == ["dw"]
    assert report.depthwise_channels_emptied == 8  # every channel of the emptied layer

    model = _tiny()
    policy = PruningPolicy(strategy="global", fraction_per_level=0.5, min_layer_density=0.1)
    pool = [t for t in infos if policy.pooled(t)]
    previous = get_masks(model)
    for level in range(1, 5):
        masks = imp_masks(model, policy, level)
        for t in infos:
            assert masks[t.name].sum() >= _floor(t.size, 0.1), (level, t.name)
            assert not np.any(masks[t.name] & ~previous[t.name])  # still only shrinks
        # the pool keeps its exact count (the floor is paid for by the other kernels) until
        # the floors alone exceed it (level 4: 8 + 8 + 820 > 521); then the floor wins
        kept = sum(int(masks[t.name].sum()) for t in pool)
        target = round(sum(t.size for t in pool) * 0.5**level)
        assert kept == max(target, sum(_floor(t.size, 0.1) for t in pool)), level
        assert (kept > target) == (level == 4)
        set_masks(model, masks)
        previous = masks
    dw = np.abs(model.get_layer("dw").kernel.numpy())
    kept_dw = masks["dw"]
    assert kept_dw.sum() == _floor(72, 0.1)
    original = np.abs(_tiny().get_layer("dw").kernel.numpy())
    assert original[kept_dw].min() >= original[~kept_dw].max()  # the largest ones are kept
    assert not dw[~kept_dw].any()
    report = sparsity_report(model, policy)
    assert report.layers_emptied == 0
    assert report.summary()["layers_emptied"] == 0


def test_min_layer_density_under_layerwise_and_one_shot() -> None:
    model = _tiny()
    infos = describe_kernels(model)
    layerwise = PruningPolicy(strategy="layerwise", fraction_per_level=0.9,
                              min_layer_density=0.05)
    masks = imp_masks(model, layerwise, 2)
    for t in infos:
        want = max(round(t.size * layerwise.density(t, 2)), _floor(t.size, 0.05))
        assert masks[t.name].sum() == want, t.name
    one_shot = PruningPolicy(strategy="global", fraction_per_level=0.2, min_layer_density=0.03)
    masks = one_shot_masks(model, one_shot, sparsity=0.995)
    assert all(masks[t.name].sum() >= _floor(t.size, 0.03) for t in infos)
    assert one_shot_masks(model, PruningPolicy(strategy="global"), 0.995)["dw"].sum() == 0
    # a kernel the policy does not prune gets no floor and keeps everything
    kept = PruningPolicy(prunable=["dense"], min_layer_density=0.5)
    assert imp_masks(model, kept, 1)["dw"].all()


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_min_layer_density_is_validated(value: float) -> None:
    with pytest.raises(ConfigError, match=r"min_layer_density: must be in \[0, 1\)"):
        PruningPolicy(min_layer_density=value)


def test_keep_depthwise_channels() -> None:
    model = _tiny(channel=3)
    bare = PruningPolicy(strategy="global", fraction_per_level=0.5)
    masks = imp_masks(model, bare, 1)
    assert not masks["dw"][:, :, 3, :].any() and masks["dw"].any()
    set_masks(model, masks)
    report = sparsity_report(model, bare)
    assert (report.layers_emptied, report.depthwise_channels_emptied) == (0, 1)
    assert report.emptied_channels == {"dw": 1}

    model = _tiny(channel=3)
    policy = PruningPolicy(strategy="global", fraction_per_level=0.5, keep_depthwise_channels=True)
    masks = imp_masks(model, policy, 1)
    assert masks["dw"].any(axis=(0, 1, 3)).all()
    channel = np.abs(model.get_layer("dw").kernel.numpy()[:, :, 3, :])
    assert channel[masks["dw"][:, :, 3, :]].max() == channel.max()  # its largest weight
    pool = [t for t in describe_kernels(model) if policy.pooled(t)]
    assert sum(int(masks[t.name].sum()) for t in pool) == round(sum(t.size for t in pool) / 2)


def test_sparsity_report_counts_emptied_layers_and_channels() -> None:
    model = to_masked(tiny_mixed_net())
    masks = ones_masks(model)
    masks["fc"][:] = False
    masks["dw"][:, :, [2, 5], :] = False
    set_masks(model, masks)
    report = sparsity_report(model)
    assert report.summary()["layers_emptied"] == 1
    assert report.summary()["depthwise_channels_emptied"] == 2
    masks["dw"][:] = False
    set_masks(model, masks)
    assert sparsity_report(model).summary()["depthwise_channels_emptied"] == 8
    assert sparsity_report(model).emptied_layers == ["dw", "fc"]
    dense = sparsity_report(model, masks=ones_masks(model))
    assert (dense.layers_emptied, dense.depthwise_channels_emptied) == (0, 0)
