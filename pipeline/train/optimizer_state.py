"""The optimizer state a rewound model starts from: reset to step k, or restored from k.

Rewinding to epoch k (Frankle et al. 2019/2020, open_lth) means the surviving weights take
their values at step ``k·S`` and training continues from there to the end, with the
learning-rate schedule at step ``k·S``. ``reset`` (open_lth's way) starts fresh moments
and sets only the step counter; ``restore`` starts from the dense run's optimizer state at
epoch k, with the moments of pruned weights set to zero (for RMSProp and Adam, where zero
second moments at a high learning rate make the first steps too large).

A state is the list of the optimizer's variables in ``optimizer.variables`` order, the
step counter first: what the training executions carry from round to round. It leaves out
the gradient accumulators of ``train.micro_batch_size`` (zero between steps) and counts
optimizer steps, not passes, so a state is the same whatever the micro-batch:
:func:`load_state` and :func:`read_state` convert at the optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

REWIND_OPTIMIZER = ("reset", "restore")


ACCUMULATOR_SUFFIX = "gradient_accumulator"  # Keras' name for an accumulator slot


def carried_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The optimizer's variables that a state holds, in order: all but the accumulators."""
    return [v for v in optimizer.variables if not v.name.endswith(ACCUMULATOR_SUFFIX)]


def _passes_per_step(optimizer: keras.optimizers.Optimizer) -> int:
    return int(optimizer.gradient_accumulation_steps or 1)


def load_state(optimizer: keras.optimizers.Optimizer,
               state: Sequence[np.ndarray] | None) -> None:
    """Set ``optimizer`` to ``state`` (None: fresh) at a step boundary: accumulators zero and
    Keras' pass counter at ``passes per step × state's step``."""
    from pipeline.train.variable_io import variable_io

    carried = {id(v) for v in carried_variables(optimizer)}
    values = iter(state) if state is not None else None
    arrays = []
    for var in optimizer.variables:
        if id(var) in carried and values is not None:
            arrays.append(next(values))
        else:
            arrays.append(np.zeros(var.shape, var.dtype))
    if state is not None:
        arrays[0] = np.asarray(state[0], optimizer.variables[0].dtype) * _passes_per_step(
            optimizer)
    variable_io(optimizer, optimizer.variables, "all").assign(arrays)


def read_state(optimizer: keras.optimizers.Optimizer) -> list[np.ndarray]:
    """``optimizer``'s state, its counter in optimizer steps. A pass that Keras' loss scaling
    skipped (non-finite gradients under mixed precision) shifts the accumulation by one
    pass; the partial step it leaves at the end of a round is dropped here."""
    from pipeline.train.variable_io import variable_io

    values = variable_io(optimizer, carried_variables(optimizer), "carried").read()
    values[0] = np.asarray(values[0] // _passes_per_step(optimizer), values[0].dtype)
    return values


def _built(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
    if not optimizer.built:
        optimizer.build(model.trainable_variables)


def fresh_state(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                step: int) -> list[np.ndarray]:
    """A new optimizer's variables (zero moments) with its step counter at ``step``."""
    _built(model, optimizer)
    variables = carried_variables(optimizer)
    state = [np.zeros(v.shape, v.dtype) for v in variables]
    state[0] = np.asarray(step, dtype=variables[0].dtype)
    return state


def restored_state(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                   saved: Sequence[np.ndarray],
                   masks: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """``saved`` (the dense optimizer's variables) for ``model``'s optimizer, with every
    slot of a masked kernel zeroed where its mask is 0."""
    from pipeline.tickets import masked_layers

    _built(model, optimizer)
    variables = carried_variables(optimizer)
    if len(saved) != len(variables) or any(
            tuple(np.shape(s)) != tuple(v.shape) for s, v in zip(saved, variables, strict=True)):
        raise ValueError("rewind.optimizer=restore: the saved dense optimizer state does not "
                         "match this model's optimizer (another optimizer or model?)")
    state = [np.array(s, dtype=v.dtype) for s, v in zip(saved, variables, strict=True)]
    for layer in masked_layers(model):
        mask = masks[layer.name]
        # Keras names a slot "<variable path with _ for />_<slot>" (add_variable_from_reference).
        prefix = layer.kernel.path.replace("/", "_") + "_"
        for i, var in enumerate(variables[1:], start=1):
            if var.name.startswith(prefix) and tuple(var.shape) == mask.shape:
                state[i] = state[i] * mask.astype(state[i].dtype)
    return state
