"""Setting and reading every variable in one call gives Keras' own values, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.experiment.settings import TrainSettings
from pipeline.models.spec import ModelSpec
from pipeline.train.optimizer_state import carried_variables, load_state, read_state
from pipeline.train.optimizers import make_loss, make_optimizer
from pipeline.train.variable_io import get_weights, set_weights


@pytest.fixture(scope="module")
def compiled():  # noqa: ANN201
    model = ModelSpec("mobilenet_v2", 32, 10, alpha=0.35, seed=1).build()  # BatchNorm too
    train = TrainSettings(epochs=2, batch_size=8, micro_batch_size=4, optimizer="adam",
                          learning_rate=0.01)
    optimizer = make_optimizer(train, 5)
    model.compile(optimizer=optimizer, loss=make_loss(0.0))
    optimizer.build(model.trainable_variables)
    return model, optimizer


def _random_like(arrays: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(a.shape).astype(a.dtype) if a.dtype.kind == "f"
            else rng.integers(0, 100, a.shape).astype(a.dtype) for a in arrays]


def test_weights_round_trip_exactly(compiled):
    model, _ = compiled
    values = _random_like(model.get_weights(), 0)
    set_weights(model, values)
    for keras_value, ours, given in zip(model.get_weights(), get_weights(model), values,
                                        strict=True):
        np.testing.assert_array_equal(keras_value, given)
        np.testing.assert_array_equal(ours, given)
    model.set_weights(_random_like(values, 1))  # Keras' own setter; ours reads it
    for keras_value, ours in zip(model.get_weights(), get_weights(model), strict=True):
        np.testing.assert_array_equal(ours, keras_value)


def test_a_wrong_shape_is_refused_naming_the_variable(compiled):
    model, _ = compiled
    values = model.get_weights()
    values[3] = np.zeros((1, 2), values[3].dtype)
    with pytest.raises(ValueError, match=f"{model.weights[3].path} has shape"):
        set_weights(model, values)
    with pytest.raises(ValueError, match="values for"):
        set_weights(model, values[:-1])


def test_optimizer_state_round_trips_with_the_step_in_optimizer_steps(compiled):
    model, optimizer = compiled
    state = _random_like(read_state(optimizer), 2)
    state[0] = np.asarray(7, state[0].dtype)
    load_state(optimizer, state)
    # Keras counts passes: 2 per step here, and the accumulators start at zero
    assert int(optimizer.variables[0].numpy()) == 14
    carried = {id(v) for v in carried_variables(optimizer)}
    accumulators = [v for v in optimizer.variables if id(v) not in carried]
    assert accumulators and not any(np.any(v.numpy()) for v in accumulators)
    for read, given in zip(read_state(optimizer), state, strict=True):
        np.testing.assert_array_equal(read, given)
    load_state(optimizer, None)
    assert not any(np.any(v.numpy()) for v in optimizer.variables)
