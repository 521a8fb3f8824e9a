"""``rewind.optimizer: reset`` is a new optimizer in the middle of the schedule (open_lth):
fresh moments whose bias correction counts from the rewind, the learning rate the
schedule's at step k·S."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from pipeline.experiment.settings import TrainSettings
from pipeline.train.optimizer_state import carried_variables, fresh_state, load_state
from pipeline.train.optimizers import RestartedAdam, make_optimizer, make_schedule

STEP = 10_000
STEPS_PER_EPOCH = 100
GRADIENT = 0.3  # constant, the same for every weight and step


def _train(optimizer: str, **kw) -> TrainSettings:
    return dataclasses.replace(
        TrainSettings(), optimizer=optimizer, learning_rate=0.01, lr_schedule="cosine",
        epochs=200, momentum=0.0, **kw)


def _updates(optimizer: keras.optimizers.Optimizer, start_step: int | None,
             steps: int) -> list[float]:
    """Sizes of ``steps`` updates under a constant gradient, from zero moments and (when
    given) the step counter at ``start_step``."""
    weight = keras.Variable(np.zeros(4, "float32"))
    optimizer.build([weight])
    if start_step is not None:
        load_state(optimizer, [np.asarray(start_step, "int64")]
                   + [np.zeros(v.shape, v.dtype) for v in optimizer.variables[1:]])
    sizes = []
    for _ in range(steps):
        before = weight.numpy().copy()
        optimizer.apply_gradients([(keras.ops.full((4,), GRADIENT), weight)])
        sizes.append(float(np.abs(weight.numpy() - before).mean()))
    return sizes


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_a_reset_optimizer_moves_like_a_new_one_at_the_schedules_rate(name):
    train = _train(name)
    rate = float(make_schedule(train, STEPS_PER_EPOCH)(STEP))
    assert rate < 0.9 * train.learning_rate  # the schedule has moved on: a real test of it
    reset = make_optimizer(train, STEPS_PER_EPOCH, moments_from=STEP)
    sizes = _updates(reset, STEP, 10)
    # a new Keras optimizer of the same kind, at the schedule's rate of step 10,000
    same = {"rho": 0.9, "epsilon": 1e-3} if name == "rmsprop" else {}
    new = keras.optimizers.get({"class_name": name, "config": {"learning_rate": rate, **same}})
    fresh = _updates(new, None, 10)
    np.testing.assert_allclose(sizes, fresh, rtol=0.05)
    assert int(reset.variables[0].numpy()) == STEP + 10  # the schedule reads the global step


def test_zero_moments_under_the_global_step_are_not_a_new_adam():
    # What the reset replaced: Keras' Adam at step 10,000 with zero moments has no bias
    # correction, so its first update is about 3.2 times the learning rate.
    train = _train("adam")
    rate = float(make_schedule(train, STEPS_PER_EPOCH)(STEP))
    first = _updates(make_optimizer(train, STEPS_PER_EPOCH), STEP, 1)[0]
    assert first / rate == pytest.approx(1 / np.sqrt(0.001) * 0.1, rel=0.01)


def test_the_restart_survives_serialization_and_accumulation():
    # Elephas workers rebuild the optimizer from its config, through tf.keras as Elephas does
    from tensorflow.keras.optimizers import deserialize, serialize

    train = _train("adam", batch_size=8, micro_batch_size=4)
    optimizer = make_optimizer(train, STEPS_PER_EPOCH, moments_from=STEP)
    copy = deserialize(serialize(optimizer))
    assert isinstance(copy, RestartedAdam) and copy.moments_from == STEP
    assert copy.gradient_accumulation_steps == 2
    weight = keras.Variable(np.zeros(4, "float32"))
    copy.build([weight])
    load_state(copy, [np.asarray(STEP, "int64")] + [
        np.zeros(v.shape, v.dtype) for v in carried_variables(copy)[1:]])
    assert int(keras.ops.convert_to_numpy(copy.iterations)) == 0  # bias correction's count
    for _ in range(2):  # one step of two passes
        copy.apply_gradients([(keras.ops.full((4,), GRADIENT), weight)])
    assert int(keras.ops.convert_to_numpy(copy.iterations)) == 1
    rate = float(make_schedule(train, STEPS_PER_EPOCH)(STEP))
    assert float(np.abs(weight.numpy()).mean()) == pytest.approx(rate, rel=0.05)


def test_fresh_state_is_unchanged_by_the_restart():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = make_optimizer(_train("adam"), STEPS_PER_EPOCH, moments_from=STEP)
    state = fresh_state(model, optimizer, STEP)
    assert int(state[0]) == STEP and not any(np.any(s) for s in state[1:])


def test_cells_share_a_compiled_model_unless_their_optimizer_reads_the_restart():
    """SGD and RMSProp read no step count, so every rewind point's cells reuse one compiled
    model in a worker (no rebuild, no retrace); Adam's restart step changes its updates."""
    from pipeline.models.spec import ModelSpec
    from pipeline.train.in_process import compiled_model

    spec = ModelSpec("lenet_300_100", 8, 10, seed=0)
    for name, shared in (("sgd", True), ("rmsprop", True), ("adam", False)):
        train = _train(name)
        first = compiled_model(spec, train, STEPS_PER_EPOCH, moments_from=0)
        later = compiled_model(spec, train, STEPS_PER_EPOCH, moments_from=STEP)
        assert (later[0] is first[0]) is shared, name
        assert isinstance(later[1], RestartedAdam) is (not shared), name
