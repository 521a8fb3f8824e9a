"""The compiled pass (``local_sgd.one_pass``) takes exactly ``train_on_batch``'s steps.

One pass runs every step of a share inside one ``tf.function``; it must leave the weights,
the optimizer's variables and BatchNorm's moving statistics where the same steps taken one
``train_on_batch`` call at a time leave them, bit for bit, on masked models, with Adam, and
with a share that ends in a smaller batch. And the pass's logs are its batches' weighted means.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.seeding import use_op_determinism
from pipeline.tickets import apply_masks, set_masks
from pipeline.tickets.conversion import to_masked
from pipeline.train.local_sgd import compiled_pass, one_pass
from tests.support.digits_nets import digits, random_masks, tiny_mixed_net


def _lenet() -> keras.Model:
    from pipeline.models.spec import ModelSpec

    return ModelSpec("lenet_300_100", 8, 10, seed=5).build()


def _compiled(build, masked: bool) -> keras.Model:  # noqa: ANN001
    model = to_masked(build()) if masked else build()
    if masked:
        set_masks(model, random_masks(model, keep=0.3, seed=1))
        apply_masks(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("build", [_lenet, tiny_mixed_net], ids=["lenet", "batchnorm"])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_the_pass_takes_train_on_batch_steps_bit_for_bit(build, masked):
    use_op_determinism(True)
    channels = 3 if build is _lenet else 1
    x, labels = digits(channels=channels)
    x, y = x[:250], np.eye(10, dtype="float32")[labels[:250]]  # 7 batches of 32 and one of 26
    batch, seed, share = 32, 11, 1

    reference = _compiled(build, masked)
    compiled = _compiled(build, masked)
    compiled.set_weights(reference.get_weights())
    for _ in range(2):  # two passes: the loop is reused with the optimizer's state carried
        order = np.random.default_rng([seed, share]).permutation(len(x))
        sums = {}
        for begin in range(0, len(x), batch):
            index = order[begin:begin + batch]
            for key, value in reference.train_on_batch(x[index], y[index],
                                                       return_dict=True).items():
                sums[key] = sums.get(key, 0.0) + value * len(index)
        logs = one_pass(compiled, x, y, batch, seed, share)

    for got, want in zip(compiled.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.path)
    for got, want in zip(compiled.optimizer.variables, reference.optimizer.variables,
                         strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.path)
    assert compiled.optimizer.iterations.numpy() == 2 * 8
    # another share size and another leftover batch: no new trace
    traces = compiled_pass(compiled, None, None).experimental_get_tracing_count()
    one_pass(compiled, x[:77], y[:77], batch, seed, share)
    assert compiled_pass(compiled, None, None).experimental_get_tracing_count() == traces
    for key, total in sums.items():  # the last pass's means, each batch by its images
        assert logs[key][0] == pytest.approx(total / len(x), rel=1e-5)
