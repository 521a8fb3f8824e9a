"""A real lottery ticket: LeNet-300-100 on the scikit-learn digits."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.models import create_model
from pipeline.seeding import make_deterministic
from pipeline.tickets import (
    PruningPolicy,
    apply_control,
    imp_masks,
    masked_layers,
    plain_weights,
    rewind,
    sparsity_report,
    to_masked,
)
from tests.support.digits_nets import digits

EPOCHS = 12


def _train(model: keras.Model, x, y) -> None:
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=EPOCHS, verbose=0, shuffle=False)


def _accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def test_lenet_ticket_at_20_percent_weights_matches_dense() -> None:
    """Deterministic (op determinism, fixed order), so the numbers repeat on this machine.

    The margins come from a measured spread: over model seeds 0-9, ticket - dense was
    -0.35 ± 0.45 points (mean ± sd, min -1.0), dense 97.5-99.2%, reinit 97.7-98.2%. The
    3-point allowance is 6 standard deviations below the mean, and the floors for dense
    (90%) and reinit (50%) are far below every measured value.
    """
    make_deterministic(0)
    x, y = digits()
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]
    x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    model = to_masked(create_model("lenet_300_100", image_size=8, classes=10, channels=1))
    init = plain_weights(model)
    _train(model, x_train, y_train)
    dense = _accuracy(model, x_test, y_test)

    policy = PruningPolicy(strategy="layerwise", fraction_per_level=0.2,
                           classifier_fraction=0.1)
    masks = imp_masks(model, policy, 7)  # 0.8 ** 7 = 21 % of the hidden kernels remain
    rewind(model, init, masks)
    _train(model, x_train, y_train)
    ticket = _accuracy(model, x_test, y_test)
    report = sparsity_report(model, policy)

    print(f"dense {dense:.3f}, ticket {ticket:.3f} at {report.weights_remaining_prunable:.3f}")
    assert dense > 0.9
    assert report.weights_remaining_prunable < 0.25
    assert ticket >= dense - 0.03
    for layer in masked_layers(model):
        assert not layer.kernel.numpy()[~masks[layer.name]].any()

    # the reinit control under the same mask also trains, into a different network
    _, fresh = apply_control("reinit", model, masks, init, seed=1)
    rewind(model, fresh, masks)
    _train(model, x_train, y_train)
    reinit = _accuracy(model, x_test, y_test)
    print(f"reinit {reinit:.3f}")
    assert reinit > 0.5
