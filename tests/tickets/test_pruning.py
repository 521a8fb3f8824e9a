"""Magnitude pruning, policies, IMP levels, rewinding, controls and the sparsity report."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from pipeline.models import create_model
from pipeline.tickets import (
    PruningPolicy,
    apply_control,
    describe_kernels,
    get_masks,
    imp_masks,
    list_controls,
    masked_layers,
    masks_at_level,
    one_shot_masks,
    plain_weights,
    rewind,
    set_masks,
    sparsity_report,
    to_masked,
)
from tests.support.digits_nets import digits, random_masks, tiny_mixed_net


def _lenet() -> keras.Model:
    return to_masked(create_model("lenet_300_100", image_size=8, classes=10, channels=1))


def _conv4() -> keras.Model:
    return to_masked(create_model("conv4", image_size=8, classes=10, channels=1))


def _kernels(model: keras.Model) -> dict[str, np.ndarray]:
    return {layer.name: layer.kernel.numpy() for layer in masked_layers(model)}


def _counts(masks: dict[str, np.ndarray]) -> dict[str, int]:
    return {name: int(m.sum()) for name, m in masks.items()}


@pytest.mark.parametrize("strategy", ["global", "layerwise"])
def test_imp_levels_keep_exact_fractions_and_only_shrink(strategy: str) -> None:
    model = _conv4()
    policy = PruningPolicy(strategy=strategy, fraction_per_level=0.2, classifier_fraction=0.2)
    sizes = {t.name: t.size for t in describe_kernels(model)}
    total = sum(sizes.values())
    previous = get_masks(model)
    rng = np.random.default_rng(0)
    for level in range(1, 6):
        masks = imp_masks(model, policy, level)
        keep = 0.8**level
        counts = _counts(masks)
        if strategy == "global":
            assert abs(sum(counts.values()) - total * keep) <= 1.0
        else:
            for name, size in sizes.items():
                assert abs(counts[name] - size * keep) <= 1.0, name
        for name in masks:  # pruned weights stay pruned
            assert not np.any(masks[name] & ~previous[name])
        set_masks(model, masks)
        report = sparsity_report(model, policy)
        assert report.weights_remaining_prunable == pytest.approx(keep, abs=1.5 / total)
        previous = masks
        for layer in masked_layers(model):  # "retrain": survivors get new magnitudes
            layer.kernel.assign(layer.kernel.numpy() * rng.uniform(0.5, 2.0, layer.kernel.shape))


def test_global_threshold_and_layerwise_threshold_respect_magnitude() -> None:
    model = _lenet()
    kernels = _kernels(model)
    policy = PruningPolicy(strategy="global", fraction_per_level=0.5, classifier_fraction=0.5)
    masks = masks_at_level(model, policy, 1)
    kept = np.concatenate([np.abs(kernels[n][m]) for n, m in masks.items()])
    cut = np.concatenate([np.abs(kernels[n][~m]) for n, m in masks.items()])
    assert kept.min() >= cut.max()
    # global differs from layerwise: per-layer fractions are not all 0.5
    assert len({round(m.mean(), 2) for m in masks.values()}) > 1
    policy = PruningPolicy(strategy="layerwise", fraction_per_level=0.5, classifier_fraction=0.5)
    masks = masks_at_level(model, policy, 1)
    for name, mask in masks.items():
        assert np.abs(kernels[name][mask]).min() >= np.abs(kernels[name][~mask]).max()
        assert abs(mask.sum() - mask.size / 2) <= 0.5


def test_ties_and_already_pruned_weights_give_exact_counts() -> None:
    model = _lenet()
    infos = describe_kernels(model)
    # every weight has the same magnitude: only the tie-breaking decides
    kernels = {t.name: np.full(t.shape, 0.5, dtype="float32") for t in infos}
    old = random_masks(model, keep=0.6, seed=1)
    # pruned weights with huge magnitude must not come back
    for name in kernels:
        kernels[name][~old[name]] = 100.0
    policy = PruningPolicy(strategy="layerwise", fraction_per_level=0.5, classifier_fraction=0.5)
    masks = masks_at_level(model, policy, 1, masks=old, kernels=kernels)
    for t in infos:
        target = round(t.size * 0.5)
        assert masks[t.name].sum() == min(target, old[t.name].sum())
        assert not np.any(masks[t.name] & ~old[t.name])


def test_policy_kinds_roles_and_exclusions() -> None:
    model = _conv4()
    roles = {t.name: t.role for t in describe_kernels(model)}
    assert roles["conv1"] == "first_conv" and roles["predictions"] == "classifier"
    policy = PruningPolicy(strategy="global", fraction_per_level=0.5, first_conv_fraction=0.0,
                           classifier_fraction=0.25, exclude=["fc2"])
    masks = imp_masks(model, policy, 2)
    assert masks["conv1"].all() and masks["fc2"].all()
    assert abs(masks["predictions"].sum() - masks["predictions"].size * 0.75**2) <= 1
    pooled = [n for n in masks if n not in ("conv1", "fc2", "predictions")]
    pool_size = sum(masks[n].size for n in pooled)
    assert abs(sum(masks[n].sum() for n in pooled) - pool_size * 0.25) <= 1
    no_dense = PruningPolicy(prunable=["conv", "depthwise"], fraction_per_level=0.5)
    dense_off = imp_masks(model, no_dense, 1)
    assert all(dense_off[n].all() for n in ("fc1", "fc2", "predictions"))
    assert not dense_off["conv2"].all()
    with pytest.raises(ValueError):
        PruningPolicy(strategy="random")
    with pytest.raises(ValueError, match="kind"):
        PruningPolicy(prunable=["conv", "batchnorm"])
    assert PruningPolicy.from_dict(policy.to_dict()) == policy
    # the main job's settings section maps by field name; extra fields are ignored
    section = SimpleNamespace(method="imp", levels=3, strategy="layerwise",
                              fraction_per_level=0.3, prunable=["dense"],
                              conv_fraction=None, first_conv_fraction=None,
                              classifier_fraction=0.1, min_layer_density=None,
                              keep_depthwise_channels=False, granularity="weights")
    mapped = PruningPolicy.from_settings(section)
    assert mapped == PruningPolicy(strategy="layerwise", fraction_per_level=0.3,
                                   prunable=["dense"], classifier_fraction=0.1)


def test_depthwise_policy_on_mobilenet_and_report() -> None:
    model = to_masked(create_model("mobilenet_v2", image_size=32, classes=10, alpha=0.35))
    policy = PruningPolicy(prunable=["conv", "dense"], fraction_per_level=0.2,
                           classifier_fraction=0.2)
    set_masks(model, imp_masks(model, policy, 3))
    kinds = {t.name: t.kind for t in describe_kernels(model)}
    masks = get_masks(model)
    assert all(masks[n].all() for n, k in kinds.items() if k == "depthwise")
    report = sparsity_report(model, policy)
    table = report.table
    assert report.weights_remaining_prunable == pytest.approx(0.512, abs=1e-5)
    assert not table[table.kind.isin(["batchnorm", "bias", "depthwise"])].prunable.any()
    assert (table[table.kind.isin(["batchnorm", "bias"])].fraction == 1.0).all()
    assert not table.tensor.str.contains("moving|mask").any()
    overall = table[table.tensor == "TOTAL overall"].iloc[0]
    assert overall["size"] == sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert 0.512 < report.weights_remaining_overall < 1.0


def test_one_shot_reaches_target_sparsity() -> None:
    model = _conv4()
    policy = PruningPolicy(strategy="global", fraction_per_level=0.2, classifier_fraction=0.1)
    masks = one_shot_masks(model, policy, sparsity=0.9)
    pooled = [t for t in describe_kernels(model) if t.role != "classifier"]
    kept = sum(int(masks[t.name].sum()) for t in pooled)
    assert abs(kept - 0.1 * sum(t.size for t in pooled)) <= 1
    level = np.log(0.1) / np.log(0.8)  # IMP level at which the pool reaches 90 %
    head = masks["predictions"]
    assert abs(head.sum() - head.size * 0.9**level) <= 1


def test_sparsity_report_definitions_on_lenet() -> None:
    model = _lenet()
    policy = PruningPolicy(strategy="layerwise", fraction_per_level=0.5, classifier_fraction=0.5)
    set_masks(model, imp_masks(model, policy, 1))
    report = sparsity_report(model, policy)
    kernels = 64 * 300 + 300 * 100 + 100 * 10
    biases = 300 + 100 + 10
    assert report.weights_remaining_prunable == pytest.approx(0.5, abs=1 / kernels)
    assert report.weights_remaining_overall == pytest.approx(
        (kernels / 2 + biases) / (kernels + biases), abs=2 / kernels)
    assert "TOTAL prunable" in str(report)


def test_rewind_restores_checkpoint_exactly_with_batchnorm_statistics() -> None:
    x, y = digits()
    model = to_masked(tiny_mixed_net())
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    model.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0)
    checkpoint = plain_weights(model)  # "epoch 1", as dense training saves it
    model.fit(x[:256], y[:256], batch_size=32, epochs=2, verbose=0)
    masks = imp_masks(model, PruningPolicy(fraction_per_level=0.6), 1)
    set_masks(model, masks)
    rewind(model, checkpoint)
    bn = model.get_layer("bn")
    assert np.abs(bn.moving_mean.numpy()).sum() > 0  # statistics were trained
    restored = plain_weights(model)
    kernel_at = {id(layer.kernel): layer.name for layer in masked_layers(model)}
    plain_vars = [v for v in model.weights if all(v is not layer.mask
                                                  for layer in masked_layers(model))]
    for var, got, want in zip(plain_vars, restored, checkpoint, strict=True):
        if id(var) in kernel_at:
            mask = masks[kernel_at[id(var)]]
            np.testing.assert_array_equal(got[mask], want[mask])
            assert not got[~mask].any()
        else:
            np.testing.assert_array_equal(got, want)
    for name, mask in get_masks(model).items():
        np.testing.assert_array_equal(mask, masks[name])


def test_controls_reinit_and_random_mask() -> None:
    assert {"reinit", "random_mask"} <= set(list_controls())
    model = _lenet()
    masks = imp_masks(model, PruningPolicy(fraction_per_level=0.7), 1)
    weights = plain_weights(model)
    same_masks, fresh = apply_control("reinit", model, masks, weights, seed=11)
    assert same_masks == masks
    _, again = apply_control("reinit", model, masks, weights, seed=11)
    _, other = apply_control("reinit", model, masks, weights, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(fresh, again, strict=True))
    assert not np.array_equal(fresh[0], weights[0]) and not np.array_equal(fresh[0], other[0])
    shuffled, same_weights = apply_control("random_mask", model, masks, weights, seed=3)
    assert same_weights == weights
    assert _counts(shuffled) == _counts(masks)
    assert all(not np.array_equal(shuffled[n], masks[n]) for n in masks)
    rewind(model, fresh, masks)
    assert not model.get_layer("fc1").kernel.numpy()[~masks["fc1"]].any()
    with pytest.raises(ValueError, match="unknown control"):
        apply_control("nope", model, masks, weights, seed=0)
