"""Top-1, top-5 and cross-entropy of a model on a split, in one task or spread over many.

The val split is read in bounded shares (planned by :mod:`pipeline.train.rounds`, decoded by
the dataset's input path, :meth:`pipeline.data.dataset.DatasetSplit.read`), never whole.
Each task returns sums (images, correct top-1, correct top-5, summed loss); the driver adds
them, so the figures are exact whatever the number of shards. The loss is plain
cross-entropy (no label smoothing), the same for the dense model and every grid cell.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data.dataset import DatasetSplit, RowSlice
from pipeline.models.spec import ModelSpec
from pipeline.train.devices import task_cpus
from pipeline.train.model_cache import ModelCache
from pipeline.train.rounds import Share, plan_epoch
from pipeline.train.variable_io import set_weights

if TYPE_CHECKING:
    import keras

EVAL_SHARE_IMAGES = 1024  # images decoded at once per task: bounds evaluation memory


@dataclass
class EvalResult:
    images: int
    top1: float
    top5: float
    loss: float

    def to_dict(self) -> dict[str, float]:
        return {"images": self.images, "top1": self.top1, "top5": self.top5,
                "val_loss": self.loss}

    def holdout_dict(self) -> dict[str, float]:
        """The figures of an evaluation on the holdout (``data.holdout_per_class``), as
        history entries name them; the early-stop epoch reads ``holdout_loss``."""
        return {"holdout_top1": self.top1, "holdout_loss": self.loss}


def predict_probs(model, x: np.ndarray, batch_size: int) -> np.ndarray:  # noqa: ANN001
    """``model.predict``'s probabilities from the same compiled predict function, a batch per
    call, without the data pipeline ``predict`` builds on every call (which costs more than
    a small network's whole evaluation)."""
    parts = [model.predict_on_batch(x[i:i + batch_size].astype(np.float32))
             for i in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])


def prob_sums(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[images, top1 hits, top5 hits, loss sum]`` of class probabilities ``probs``."""
    k = min(5, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    correct1 = int(np.sum(top[:, 0] == y))
    correct5 = int(np.sum(np.any(top == y[:, None], axis=1)))
    picked = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return np.array([len(y), correct1, correct5, float(-np.log(picked).sum())])


def evaluate_shares(
    model, shares: Sequence[Share], image_size: int, batch_size: int  # noqa: ANN001
) -> np.ndarray:
    """``[images, top1 hits, top5 hits, loss sum]`` of ``model`` over ``shares``."""
    total = np.zeros(4)
    for share in shares:
        split = DatasetSplit.of(share.split_url)
        x, y = split.read(share.slices, image_size, parallel=task_cpus())
        if len(y):
            total += prob_sums(predict_probs(model, x, batch_size), y)
    return total


def to_result(sums: np.ndarray) -> EvalResult:
    images = int(sums[0])
    if images == 0:
        raise ValueError("evaluation saw no images")
    return EvalResult(images, sums[1] / images, sums[2] / images, sums[3] / images)


def eval_shares(
    split_url: str, groups: Sequence[RowSlice] | None = None, workers: int = 1
) -> list[Share]:
    """The split cut into equal shares of at most EVAL_SHARE_IMAGES images, a multiple of
    ``workers`` of them so every task gets about the same work."""
    groups = DatasetSplit.of(split_url).row_groups() if groups is None else list(groups)
    plan = plan_epoch(groups, workers, EVAL_SHARE_IMAGES, seed=0)
    return [Share(split_url, tuple(s)) for s in plan]


def evaluate_local(
    model, split_url: str, image_size: int, batch_size: int  # noqa: ANN001
) -> EvalResult:
    """Evaluate in this process (a grid task evaluates its own model this way)."""
    return to_result(evaluate_shares(model, eval_shares(split_url), image_size, batch_size))


_MODELS: ModelCache[keras.Model] = ModelCache()


def cached_model(spec: ModelSpec) -> keras.Model:
    """A built model per architecture in this (reused) Python worker
    (:mod:`pipeline.train.model_cache`): evaluating every epoch then costs the predictions,
    not a model build and a graph trace each time. Every use sets all the weights."""
    return _MODELS.get(spec.architecture(), spec.build)


def _evaluate_partition(
    shares: Iterator[Share], spec: ModelSpec, weights, batch_size: int  # noqa: ANN001
) -> Iterator[np.ndarray]:
    from pipeline.train.devices import configure_task_devices

    shares = list(shares)
    if not shares:
        return
    configure_task_devices()
    model = cached_model(spec)
    set_weights(model, weights.value)
    yield evaluate_shares(model, shares, spec.image_size, batch_size)


def evaluate_distributed(
    sc, spec: ModelSpec, weights: list[np.ndarray], split_url: str,  # noqa: ANN001
    shards: int, batch_size: int, groups: Sequence[RowSlice] | None = None,
    description: str | None = None,
) -> EvalResult:
    """Evaluate ``weights`` on ``split_url`` with up to ``shards`` Spark tasks, its Spark
    job named ``description`` in the UI."""
    if description:
        sc.setJobDescription(description)
    shares = eval_shares(split_url, groups, max(1, shards))
    broadcast = sc.broadcast(weights)
    try:
        parts = min(max(1, shards), len(shares))
        rdd = sc.parallelize(shares, parts)
        sums = rdd.mapPartitions(
            functools.partial(_evaluate_partition, spec=spec, weights=broadcast,
                              batch_size=batch_size)
        ).collect()
    finally:
        broadcast.destroy()
    return to_result(np.sum(sums, axis=0))
