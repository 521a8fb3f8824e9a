"""One round of local SGD: what a replica does with its share, and how a round is averaged.

Both executions of :mod:`pipeline.train.procedure` call these two functions, an Elephas
worker per share (:mod:`pipeline.train.elephas_rounds`) or one process for every share in
turn (:mod:`pipeline.train.in_process`), so the arithmetic is the same in both.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np


def one_pass(model, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,  # noqa: ANN001
             share: int) -> dict[str, list[float]]:
    """One pass over ``x`` in mini-batches, in the order drawn from the round's ``seed`` and
    the share's index; the loss and metrics averaged over it (each batch weighted by its
    images, as ``fit``'s running means are).

    The steps are ``train_on_batch``'s (the model's own ``train_step``, XLA as the model was
    compiled), run in one compiled loop over the pass (:func:`compiled_pass`) instead of
    one Python call and one read-back of the metrics per step, which on a small network
    cost more than the step. A batch left over at the end (a share that is not whole
    batches) is one more call of the same loop.
    """
    import tensorflow as tf

    order = np.random.default_rng([int(seed), int(share)]).permutation(len(x))
    model.reset_metrics()
    images, labels = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    run = compiled_pass(model, images, labels)
    full = len(x) // batch_size
    if full:
        run(images, labels, tf.constant(order[: full * batch_size].reshape(full, batch_size),
                                        tf.int64))
    if len(x) % batch_size:
        run(images, labels, tf.constant(order[full * batch_size :].reshape(1, -1), tf.int64))
    logs = model.get_metrics_result()
    return {key: [float(value)] for key, value in logs.items()}


_PASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_pass(model, x, y):  # noqa: ANN001, ANN201 - Keras model, tensors; a tf.function
    """``run(x, y, batches)``: ``model.train_step`` on ``x[b], y[b]`` for every row ``b`` of
    ``batches`` (indices), in order, inside one ``tf.function``; one per model, traced once
    for every pass, share and leftover batch (its signature leaves every count open)."""
    import tensorflow as tf

    run = _PASSES.get(model)
    if run is not None:
        return run
    step = model.train_step
    if model.jit_compile:
        step = tf.function(step, jit_compile=True, reduce_retracing=True)

    @tf.function(input_signature=[
        tf.TensorSpec([None, *x.shape[1:]], x.dtype),
        tf.TensorSpec([None, *y.shape[1:]], y.dtype),
        tf.TensorSpec([None, None], tf.int64),
    ])
    def run(x, y, batches):  # noqa: ANN001, ANN202
        for i in tf.range(tf.shape(batches)[0]):
            index = batches[i]
            step((tf.gather(x, index), tf.gather(y, index), None))

    _PASSES[model] = run
    return run


def train_share(
    model, optimizer, weights: Sequence[np.ndarray],  # noqa: ANN001 - compiled Keras objects
    optimizer_state: Sequence[np.ndarray] | None, x: np.ndarray, y: np.ndarray,
    batch_size: int, seed: int, share: int, deterministic: bool,
) -> dict[str, Any]:
    """A replica's round: start from ``weights`` and ``optimizer_state`` (None: fresh), train
    one pass over its share, return the weight deltas and the optimizer's variables.

    ``batch_size`` is the images of one forward/backward pass: the procedure's batch, or its
    micro-batch when ``optimizer`` accumulates that many passes into each step. Consecutive
    passes then make up the step's batch, so a step sees the same images either way.

    The job's models have no random ops in their train step (no dropout), so a share needs
    no seed of its own: its batch order is drawn from ``seed`` and ``share``. Reseeding
    TensorFlow here would retrace the train step for every share.
    """
    from pipeline.seeding import use_op_determinism
    from pipeline.train.optimizer_state import load_state, read_state
    from pipeline.train.variable_io import get_weights, set_weights

    use_op_determinism(deterministic)
    set_weights(model, weights)
    load_state(optimizer, optimizer_state)
    start = time.monotonic()
    history = one_pass(model, x, y, batch_size, seed, share)
    seconds = time.monotonic() - start
    after = get_weights(model)
    return {
        "deltas": [b - a for b, a in zip(weights, after, strict=True)],
        "optimizer": read_state(optimizer),
        "history": history,
        "images": int(x.shape[0]),
        "seconds": seconds,
    }


def average_round(
    base: Sequence[np.ndarray], outcomes: Sequence[dict[str, Any]]
) -> tuple[list[np.ndarray], list[np.ndarray], float, float]:
    """The round's result: weights and optimizer variables averaged over the replicas
    (weighted by their images; the step counter takes the maximum), and the mean loss and
    accuracy of their passes."""
    if not outcomes:
        raise RuntimeError("a training round produced no results: it had no shares")
    total = sum(o["images"] for o in outcomes)
    weights = [b - sum(o["deltas"][i] * (o["images"] / total) for o in outcomes)
               for i, b in enumerate(base)]
    state = []
    for i, value in enumerate(outcomes[0]["optimizer"]):
        if i == 0:  # Keras optimizers keep their ``iterations`` counter first
            state.append(np.max([o["optimizer"][0] for o in outcomes], axis=0))
            continue
        mean = sum(o["optimizer"][i].astype(np.float64) * (o["images"] / total) for o in outcomes)
        state.append(np.asarray(mean, dtype=value.dtype))
    loss = sum(o["history"]["loss"][-1] * o["images"] for o in outcomes) / total
    acc_key = next((k for k in outcomes[0]["history"] if "acc" in k), None)
    accuracy = (sum(o["history"][acc_key][-1] * o["images"] for o in outcomes) / total
                if acc_key else float("nan"))
    return weights, state, float(loss), float(accuracy)
