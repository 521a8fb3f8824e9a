"""Elephas rounds with one step per worker are exactly synchronous SGD with the global batch.

Each worker takes one SGD-with-momentum step on its own 32 images from the broadcast
weights and optimizer state; averaging the deltas and the momentum equals one step on all
64 images in one process. Two rounds check that the momentum and the step counter (which
drives the learning-rate schedule) carry over between rounds.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.models.spec import ModelSpec
from pipeline.train.elephas_rounds import RoundSparkModel
from pipeline.train.schedules import WarmupDecay
from tests.support.digits_nets import digits

SPEC = ModelSpec("lenet_300_100", 8, 10, seed=3)


def _optimizer() -> keras.optimizers.Optimizer:
    schedule = WarmupDecay(0.1, kind="cosine", total_steps=4)
    return keras.optimizers.SGD(schedule, momentum=0.9)


def _model() -> keras.Model:
    model = SPEC.build()
    model.compile(optimizer=_optimizer(), loss=keras.losses.CategoricalCrossentropy())
    return model


def test_one_step_rounds_equal_global_batch_sgd(spark):
    x, y = digits(size=8, channels=3)
    onehot = np.eye(10, dtype=np.float32)[y]
    batches = [(x[i * 64:(i + 1) * 64], onehot[i * 64:(i + 1) * 64]) for i in range(2)]

    reference = _model()
    for bx, by in batches:
        reference.train_on_batch(bx, by)

    distributed = _model()
    spark_model = RoundSparkModel(distributed, batch_size=32)
    for bx, by in batches:
        records = list(zip(bx, by, strict=True))
        rdd = spark.sparkContext.parallelize(records, 2)  # 32 images per worker
        result = spark_model.fit_round(rdd)  # one batch per worker: its order cannot matter
        assert (result.images, result.tasks) == (64, 2)
    assert spark_model.global_step == 2
    for got, want in zip(distributed.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_pass_reports_its_mean_loss_not_its_last_batch():
    from pipeline.train.local_sgd import one_pass

    model = SPEC.build()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    x, labels = digits(channels=3)
    x, y = x[:70], np.eye(10, dtype="float32")[labels[:70]]
    logs = one_pass(model, x, y, batch_size=32, seed=0, share=0)  # batches of 32, 32 and 6
    loss, accuracy = model.evaluate(x, y, batch_size=70, verbose=0)
    assert logs["loss"][0] == pytest.approx(loss, rel=1e-5)
    assert logs["accuracy"][0] == pytest.approx(accuracy, abs=1e-6)
