"""Channel tickets (prune.granularity: channels) and their slimming."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import ConfigError
from pipeline.export.slim import slim_model
from pipeline.models.channel_spaces import ChannelGraph
from pipeline.tickets import (
    PruningPolicy,
    apply_control,
    imp_masks,
    set_masks,
    to_masked,
    to_plain,
)
from pipeline.tickets.channel_pruning import prunable_spaces
from tests.support.deploy_nets import (
    assert_varies_with_the_image,
    random_batchnorm,
    small_mobilenet,
)

POLICY = PruningPolicy(strategy="layerwise", fraction_per_level=0.5, granularity="channels")


def _channels(mask: np.ndarray, axis: int) -> np.ndarray:
    """Per channel: True (whole), False (empty); a partial channel fails the test."""
    moved = np.moveaxis(mask, axis, 0).reshape(mask.shape[axis], -1)
    whole, empty = moved.all(axis=1), ~moved.any(axis=1)
    assert (whole | empty).all(), "a channel is partly pruned"
    return whole


@pytest.fixture(scope="module")
def ticket() -> dict:
    rng = np.random.default_rng(0)
    model = to_masked(small_mobilenet(rng))
    level1 = imp_masks(model, POLICY, 1)
    set_masks(model, level1)
    level2 = imp_masks(model, POLICY, 2)
    return {"model": model, "level1": level1, "level2": level2, "rng": rng}


def test_whole_channels_go_in_every_kernel_of_their_space(ticket) -> None:
    model = ticket["model"]
    spaces = prunable_spaces(model, POLICY)
    names = {s.root for s, _ in spaces}
    graph = ChannelGraph(model)
    assert len(spaces) == sum(not s.frozen for s in graph.spaces.values()) > 10
    for space, _ in spaces:
        for level, density in ((1, 0.5), (2, 0.25)):
            masks = ticket[f"level{level}"]
            kept = [_channels(masks[n], -1) for n in space.producers]
            kept += [_channels(masks[n], 2) for n in space.depthwise]
            assert all(np.array_equal(k, kept[0]) for k in kept), space.root
            assert kept[0].sum() == max(1, round(space.channels * density)), space.root
        assert not (~_channels(ticket["level1"][space.producers[0]], -1)
                    & _channels(ticket["level2"][space.producers[0]], -1)).any()
    # the classifier writes the logits, a frozen space: it keeps every output
    assert ticket["level2"]["predictions"].all() and "predictions" not in names


def test_the_kept_channels_have_the_largest_l1_norms(ticket) -> None:
    model = ticket["model"]
    space = next(s for s, _ in prunable_spaces(model, POLICY)
                 if s.producers[0] == "block_3_expand")
    fresh = to_masked(small_mobilenet(np.random.default_rng(0)))
    kernels = {n: fresh.get_layer(n).kernel.numpy() for n in space.producers + space.depthwise}
    score = sum(np.abs(np.moveaxis(kernels[n], -1, 0)).reshape(space.channels, -1).sum(1)
                for n in space.producers)
    score += sum(np.abs(np.moveaxis(kernels[n], 2, 0)).reshape(space.channels, -1).sum(1)
                 for n in space.depthwise)
    kept = _channels(ticket["level1"]["block_3_expand"], -1)
    assert score[kept].min() > score[~kept].max()


def test_a_channel_ticket_slims_by_its_pruned_channels(ticket) -> None:
    model = to_masked(small_mobilenet(np.random.default_rng(0)))
    set_masks(model, ticket["level2"])
    plain = to_plain(model)
    random_batchnorm(plain, np.random.default_rng(4))  # the statistics of the pruned network
    result = slim_model(plain)
    graph = ChannelGraph(model)
    for space, _ in prunable_spaces(model, POLICY):
        kept = max(1, round(space.channels * 0.25))
        layer = space.producers[0]
        assert result.model.get_layer(layer).kernel.shape[-1] == kept, layer
    assert result.parameters_after < 0.5 * result.parameters_before
    assert graph.spaces  # read from the masked twin too
    x = np.random.default_rng(3).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    assert_varies_with_the_image(np.asarray(plain(x)))
    np.testing.assert_allclose(np.asarray(result.model(x)), np.asarray(plain(x)), atol=1e-4)


def test_the_random_mask_control_draws_channels(ticket) -> None:
    model, masks = ticket["model"], ticket["level2"]
    drawn, _ = apply_control("random_mask", model, masks, [], seed=5, granularity="channels")
    moved = 0
    for space, _ in prunable_spaces(model, POLICY):
        own = _channels(masks[space.producers[0]], -1)
        other = _channels(drawn[space.producers[0]], -1)
        assert own.sum() == other.sum()
        for name in space.depthwise:
            assert np.array_equal(_channels(drawn[name], 2), other)
        moved += int(not np.array_equal(own, other))
    assert moved > 5
    unstructured, _ = apply_control("random_mask", model, masks, [], seed=5)
    with pytest.raises(AssertionError, match="partly pruned"):
        _channels(unstructured["block_3_expand"], -1)


def test_channel_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="granularity.*layerwise"):
        PruningPolicy(granularity="channels")
    with pytest.raises(ConfigError, match="granularity.*keep_depthwise_channels"):
        PruningPolicy(strategy="layerwise", granularity="channels", keep_depthwise_channels=True)
    with pytest.raises(ConfigError, match="granularity"):
        PruningPolicy(granularity="filters")  # type: ignore[arg-type]
