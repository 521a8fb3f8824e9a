"""Ticket storage: bit-packed masks, sparse rewind weights, weight lists via the store."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models import create_model
from pipeline.store import ArtifactStore, StoreError
from pipeline.tickets import (
    PruningPolicy,
    apply_ticket,
    get_masks,
    imp_masks,
    load_ticket,
    make_ticket,
    masks_from_bytes,
    masks_to_bytes,
    plain_weights,
    save_ticket,
    set_masks,
    ticket_exists,
    to_masked,
)
from pipeline.tickets.storage import ticket_files
from pipeline.weights_npz import load_weights, save_weights, weights_from_bytes, weights_to_bytes
from tests.support.digits_nets import digits


def test_masks_pack_to_bits_and_back() -> None:
    rng = np.random.default_rng(0)
    masks = {"a": rng.random((3, 3, 5, 7)) < 0.3, "odd": rng.random(13) < 0.5,
             "all": np.ones((4, 4), bool), "none": np.zeros((2, 9), bool)}
    data = masks_to_bytes(masks)
    back = masks_from_bytes(data)
    assert sorted(back) == sorted(masks)
    for name, mask in masks.items():
        assert back[name].dtype == bool and back[name].shape == mask.shape
        np.testing.assert_array_equal(back[name], mask)
    big = {"k": rng.random((300, 300)) < 0.5}
    assert len(masks_to_bytes(big)) < 300 * 300 / 8 + 1500  # about one bit per weight


def test_weight_lists_round_trip_through_the_store(tmp_path) -> None:
    weights = [np.arange(6, dtype="float32").reshape(2, 3), np.array([1.5], "float64"),
               np.zeros((0,), "float32"), np.array(7, "int64")]
    for compress in (False, True):
        back = weights_from_bytes(weights_to_bytes(weights, compress=compress))
        assert [w.dtype for w in back] == [w.dtype for w in weights]
        for got, want in zip(back, weights, strict=True):
            np.testing.assert_array_equal(got, want)
    store = ArtifactStore(str(tmp_path))
    url = save_weights(store, weights, "ckpt", "epoch_0003.npz")
    assert url.startswith("file://") and store.exists("ckpt", "epoch_0003.npz")
    assert len(load_weights(store, "ckpt", "epoch_0003.npz")) == 4


@pytest.fixture(scope="module")
def lenet_ticket():
    model = to_masked(create_model("lenet_300_100", image_size=8, classes=10, channels=1))
    init = plain_weights(model)
    for layer in model.layers:  # pretend training moved the weights
        for var in layer.trainable_weights:
            var.assign(var.numpy() * 1.5 + 0.01)
    policy = PruningPolicy(strategy="layerwise", fraction_per_level=0.5,
                           classifier_fraction=0.25)
    masks = imp_masks(model, policy, 3)
    settings = {"model": "lenet_300_100", "level": 3, "rewind_epoch": 0, "seed": 0}
    return model, make_ticket(model, policy, masks, init, settings), init


def test_ticket_round_trip(lenet_ticket, tmp_path) -> None:
    model, ticket, init = lenet_ticket
    store = ArtifactStore(f"file://{tmp_path}")
    assert not ticket_exists(store, "tickets", "L3")
    url = save_ticket(store, ticket, "tickets", "L3")
    assert url.endswith("tickets/L3") and ticket_exists(store, "tickets", "L3")
    loaded = load_ticket(store, "tickets", "L3")
    assert loaded.policy == ticket.policy and loaded.settings == ticket.settings
    assert loaded.summary == ticket.summary and "TOTAL prunable" in loaded.sparsity_csv
    for name, mask in ticket.masks.items():
        np.testing.assert_array_equal(loaded.masks[name], mask)
    for got, want in zip(loaded.weights, ticket.weights, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # the rewind weights are the init under the mask, not the trained weights
    np.testing.assert_array_equal(loaded.weights[0], init[0] * ticket.masks["fc1"])
    fresh = to_masked(create_model("lenet_300_100", image_size=8, classes=10, channels=1, seed=9))
    apply_ticket(fresh, loaded)
    for name, mask in get_masks(fresh).items():
        np.testing.assert_array_equal(mask, ticket.masks[name])
    x, _ = digits()
    reference = to_masked(create_model("lenet_300_100", image_size=8, classes=10, channels=1))
    set_masks(reference, ticket.masks)
    apply_ticket(reference, ticket)
    np.testing.assert_array_equal(fresh(x[:16]), reference(x[:16]))


def test_ticket_is_compact_and_incomplete_tickets_fail(lenet_ticket, tmp_path) -> None:
    model, ticket, _ = lenet_ticket
    assert ticket.summary["weights_remaining_prunable"] < 0.15
    ticket_bytes = sum(len(b) for b in ticket_files(ticket).values())
    dense_bytes = len(weights_to_bytes(plain_weights(model)))
    assert ticket_bytes < 0.2 * dense_bytes
    store = ArtifactStore(str(tmp_path))
    save_ticket(store, ticket, "t")
    store.delete("t", "ticket.json")
    with pytest.raises(StoreError):
        load_ticket(store, "t")
