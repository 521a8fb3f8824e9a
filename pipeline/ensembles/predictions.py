"""Prediction ensembles: the softmax average of K trained members on a split.

Each Spark task takes some of the split's shares and, for each, the probabilities of every
member (one built model, the members' weights set in turn); it returns the sums of
:func:`pipeline.train.evaluation.prob_sums` for each member and for their mean, so the
members and the ensemble are scored on the same images in the same pass.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np

from pipeline.data.dataset import DatasetSplit
from pipeline.models.spec import ModelSpec
from pipeline.train.devices import task_cpus
from pipeline.train.evaluation import (
    EvalResult,
    cached_model,
    eval_shares,
    predict_probs,
    prob_sums,
    to_result,
)
from pipeline.train.rounds import Share

Weights = list[np.ndarray]


def ensemble_sums(model, members: Sequence[Weights], shares: Sequence[Share],  # noqa: ANN001
                  image_size: int, batch_size: int) -> np.ndarray:
    """Rows 0..K-1: each member's ``[images, top1, top5, loss sum]``; row K: the ensemble's."""
    total = np.zeros((len(members) + 1, 4))
    for share in shares:
        x, y = DatasetSplit.of(share.split_url).read(share.slices, image_size,
                                                     parallel=task_cpus())
        if not len(y):
            continue
        summed = None
        for i, weights in enumerate(members):
            model.set_weights(weights)
            probs = predict_probs(model, x, batch_size)
            total[i] += prob_sums(probs, y)
            summed = probs if summed is None else summed + probs
        total[-1] += prob_sums(summed / len(members), y)
    return total


def _partition(shares: Iterator[Share], spec: ModelSpec, members, batch_size: int  # noqa: ANN001
               ) -> Iterator[np.ndarray]:
    from pipeline.train.devices import configure_task_devices

    shares = list(shares)
    if not shares:
        return
    configure_task_devices()
    yield ensemble_sums(cached_model(spec), members.value, shares, spec.image_size, batch_size)


def evaluate_ensemble(sc, spec: ModelSpec, members: Sequence[Weights], split_url: str,  # noqa: ANN001
                      shards: int, batch_size: int) -> tuple[list[EvalResult], EvalResult]:
    """Each member's result and the ensemble's on ``split_url``, over up to ``shards``
    Spark tasks."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs two members or more, got {len(members)}")
    shares = eval_shares(split_url, workers=max(1, shards))
    broadcast = sc.broadcast([list(m) for m in members])
    try:
        rdd = sc.parallelize(shares, min(max(1, shards), len(shares)))
        parts = rdd.mapPartitions(functools.partial(
            _partition, spec=spec, members=broadcast, batch_size=batch_size)).collect()
    finally:
        broadcast.destroy()
    sums = np.sum(parts, axis=0)
    return [to_result(row) for row in sums[:-1]], to_result(sums[-1])
