"""One round of local SGD: what a replica does with its share, and how a round is averaged.

Both executions of :mod:`pipeline.train.procedure` call these two functions, an Elephas
worker per share (:mod:`pipeline.train.elephas_rounds`) or one process for every share in
turn (:mod:`pipeline.train.in_process`), so the arithmetic is the same in both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def one_pass(model, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,  # noqa: ANN001
             share: int) -> dict[str, list[float]]:
    """One pass over ``x`` in mini-batches with ``train_on_batch``, in the order drawn from
    the round's ``seed`` and the share's index; the loss and metrics averaged over it.

    Equivalent to ``model.fit(epochs=1)`` but without building a fresh data pipeline on
    every call, which on a small round costs as much as the training. Keras 3 resets the
    metrics in every ``train_on_batch``, so the pass's means are taken here, each batch
    weighted by its images, as ``fit``'s running means are.
    """
    order = np.random.default_rng([int(seed), int(share)]).permutation(len(x))
    sums: dict[str, float] = {}
    for begin in range(0, len(x), batch_size):
        index = order[begin : begin + batch_size]
        logs = model.train_on_batch(x[index], y[index], return_dict=True)
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(index)
    return {key: [total / len(x)] for key, total in sums.items()}


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
