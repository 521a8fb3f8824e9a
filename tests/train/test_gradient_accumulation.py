"""Micro-batches with gradient accumulation take the same steps as the whole batch.

On a network without BatchNorm (LeNet-300-100) the mean of 4 micro-batch gradients is the
batch gradient, so a round of 8 steps of 32 images trained as 32 passes of 8 must give the
same weights, momentum and step counter, up to float32 summation order. The learning rate
of each step must be the whole-batch schedule's, and the carried state must not depend on
the micro-batch (rewind checkpoints stay interchangeable).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.experiment.settings import TrainSettings
from pipeline.models.spec import ModelSpec
from pipeline.train.elephas_rounds import RoundSparkModel
from pipeline.train.local_sgd import train_share
from pipeline.train.optimizer_state import carried_variables, fresh_state
from pipeline.train.optimizers import make_loss, make_optimizer
from pipeline.train.schedules import WarmupDecay
from tests.support.digits_nets import digits

SPEC = ModelSpec("lenet_300_100", 8, 10, seed=5)
STEPS_PER_EPOCH = 8


def _train(micro: int) -> TrainSettings:
    return TrainSettings(epochs=2, batch_size=32, micro_batch_size=micro, learning_rate=0.1,
                         momentum=0.9, weight_decay=1e-3, lr_schedule="cosine",
                         warmup_epochs=0.5)


def _compiled(micro: int) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    model = SPEC.build()
    optimizer = make_optimizer(_train(micro), STEPS_PER_EPOCH)
    model.compile(optimizer=optimizer, loss=make_loss(0.0), metrics=["accuracy"])
    optimizer.build(model.trainable_variables)
    return model, optimizer


def _data() -> tuple[np.ndarray, np.ndarray]:
    x, labels = digits(size=8, channels=3)
    return x[:256], np.eye(10, dtype=np.float32)[labels[:256]]


def test_the_schedule_gives_each_pass_its_step_rate():
    whole = WarmupDecay(0.1, kind="cosine", warmup_steps=3, total_steps=16)
    passes = WarmupDecay(0.1, kind="cosine", warmup_steps=3, total_steps=16, micro_steps=4)
    got = [float(passes(p)) for p in range(64)]
    want = [float(whole(p // 4)) for p in range(64)]
    assert got == want
    assert WarmupDecay.from_config(passes.get_config()).micro_steps == 4


def test_micro_batches_train_the_whole_batch_steps():
    x, y = _data()
    outcomes = {}
    for micro in (0, 8):
        model, optimizer = _compiled(micro)
        start = fresh_state(model, optimizer, step=3)  # mid warm-up, so the rate changes
        outcomes[micro] = train_share(model, optimizer, SPEC.build().get_weights(), start,
                                      x, y, micro or 32, seed=1, share=0, deterministic=True)
    whole, micro = outcomes[0], outcomes[8]
    assert micro["images"] == whole["images"] == 256
    assert int(micro["optimizer"][0]) == int(whole["optimizer"][0]) == 3 + 8
    assert [s.shape for s in micro["optimizer"]] == [s.shape for s in whole["optimizer"]]
    for got, want in zip(micro["deltas"], whole["deltas"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    for got, want in zip(micro["optimizer"][1:], whole["optimizer"][1:], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert micro["history"]["loss"][0] == pytest.approx(whole["history"]["loss"][0], rel=1e-3)


def test_the_carried_state_leaves_out_the_accumulators():
    _, accumulating = _compiled(8)
    _, plain = _compiled(0)
    names = [v.name for v in carried_variables(accumulating)]
    assert len(accumulating.variables) > len(names) == len(plain.variables)
    assert not [n for n in names if "accumulator" in n]


def test_elephas_workers_accumulate_as_the_driver_does(spark):
    x, y = _data()
    x, y = x[:128], y[:128]
    reference, ref_opt = _compiled(0)
    for step in range(2):  # two steps of 64 images, the global batch of 2 workers x 32
        reference.train_on_batch(x[step * 64:(step + 1) * 64], y[step * 64:(step + 1) * 64])

    model, _ = _compiled(8)
    spark_model = RoundSparkModel(model, batch_size=8)
    for step in range(2):
        records = list(zip(x[step * 64:(step + 1) * 64], y[step * 64:(step + 1) * 64],
                           strict=True))
        # one 32-image step per worker, in 4 passes of 8: averaged, the 64-image step
        spark_model.fit_round(spark.sparkContext.parallelize(records, 2), deterministic=True)
    assert spark_model.global_step == int(ref_opt.iterations) == 2
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
