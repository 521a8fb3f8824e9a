"""The optimizer state a rewound cell starts from: reset to step k, or restored from k."""

from __future__ import annotations

import keras
import numpy as np

from pipeline.tickets import masked_layers, to_masked
from pipeline.train.optimizer_state import fresh_state, restored_state
from tests.support.digits_nets import random_masks, tiny_mixed_net


def _model_and_optimizer(name: str):  # noqa: ANN202
    model = to_masked(tiny_mixed_net())
    optimizer = keras.optimizers.get(name)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def test_reset_keeps_only_the_step_counter():
    model, optimizer = _model_and_optimizer("sgd")
    state = fresh_state(model, optimizer, step=12)
    assert int(state[0]) == 12
    assert all(not np.any(s) for s in state[1:])
    assert [s.shape for s in state] == [tuple(v.shape) for v in optimizer.variables]


def test_restore_zeroes_the_moments_of_pruned_weights():
    model, optimizer = _model_and_optimizer("adam")
    rng = np.random.default_rng(0)
    saved = [np.asarray(7, "int64")] + [rng.uniform(1, 2, tuple(v.shape)).astype(v.dtype)
                                        for v in optimizer.variables[1:]]
    masks = random_masks(model, 0.5, seed=1)
    state = restored_state(model, optimizer, saved, masks)
    assert int(state[0]) == 7
    zeroed = 0
    kernels = {layer.kernel.path.replace("/", "_") + "_": layer.name
               for layer in masked_layers(model)}
    for var, before, after in zip(optimizer.variables[1:], saved[1:], state[1:], strict=True):
        owner = next((name for prefix, name in kernels.items() if var.name.startswith(prefix)),
                     None)
        if owner is None:  # biases, BatchNorm: untouched
            np.testing.assert_array_equal(after, before)
            continue
        mask = masks[owner]
        assert np.all(after[~mask] == 0) and np.array_equal(after[mask], before[mask])
        zeroed += 1
    assert zeroed == 2 * len(kernels)  # Adam's two moments of every masked kernel
