"""The training procedure executed across the executors with Elephas, epoch by epoch.

Each epoch is the procedure's sequence of rounds (:mod:`pipeline.train.procedure`); every
round is one Spark stage in which each task reads its share of row groups from the split,
trains on it from the broadcast weights and optimizer state, and returns weight deltas and
optimizer variables that :class:`~pipeline.train.elephas_rounds.RoundSparkModel` averages.
So the learning-rate schedule, momentum and BatchNorm statistics continue across rounds
as they would in one process.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator

import keras
import numpy as np

from pipeline.data.dataset import DatasetSplit
from pipeline.seeding import derive_seed
from pipeline.train.elephas_rounds import RoundSparkModel
from pipeline.train.procedure import EpochStats, RoundResult, TrainingProcedure, run_epoch
from pipeline.train.rounds import RowSlice, Share

log = logging.getLogger(__name__)


def share_records(
    shares: Iterator[Share],
    num_classes: int,
    image_size: int | None,
    flip_seed: int | None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``mapPartitions`` body: ``(image uint8, one-hot float32)`` records of the shares, the
    numpy form Elephas' workers stack, decoded by the dataset's input path.

    With ``flip_seed``, half of the images are mirrored left-right, drawn per image from the
    seed and the share's slices (so the draws do not depend on which task reads the share).
    """
    from pipeline.train.devices import task_cpus

    for share in shares:
        key = None if flip_seed is None else derive_seed(flip_seed, repr(share.slices))
        x, y = DatasetSplit.of(share.split_url).read(share.slices, image_size, flip_key=key,
                                                     parallel=task_cpus())
        onehot = np.eye(num_classes, dtype=np.float32)[y]
        yield from zip(x, onehot, strict=True)


def make_spark_model(
    model: keras.Model, procedure: TrainingProcedure, optimizer: keras.optimizers.Optimizer,
    loss: keras.losses.Loss, optimizer_state: list[np.ndarray] | None = None,
) -> RoundSparkModel:
    """Compile ``model`` and wrap it; ``optimizer_state`` resumes an earlier run (or starts
    a rewound one)."""
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    spark_model = RoundSparkModel(model, custom_objects=procedure.spec.custom_objects,
                                  batch_size=procedure.pass_batch_size)
    spark_model.optimizer_state = optimizer_state
    return spark_model


def train_epoch(
    sc, spark_model: RoundSparkModel, procedure: TrainingProcedure,  # noqa: ANN001
    groups: list[RowSlice], epoch: int, after_round: Callable[[int, int], None] | None = None,
    label: str | None = None,
) -> EpochStats:
    """Train epoch ``epoch`` (1-based) over all rounds; the master model holds the result
    (and, when ``after_round(index, rounds)`` runs, the result of each round so far). Each
    round's Spark job is described in the UI as ``<label> round i/n`` (label: ``dense epoch
    E``)."""
    label = label or f"dense epoch {epoch}"

    def describe(index: int, rounds: int) -> None:
        sc.setJobDescription(f"{label} round {index + 1}/{rounds}")

    def fit_round(shares: list[Share], epoch: int, index: int) -> RoundResult:
        records = functools.partial(
            share_records, num_classes=procedure.num_classes,
            image_size=procedure.spec.image_size, flip_seed=procedure.flip_seed(epoch, index))
        rdd = sc.parallelize(shares, len(shares)).mapPartitions(records)
        return spark_model.fit_round(rdd, seed=procedure.order_seed(epoch, index),
                                     deterministic=procedure.deterministic,
                                     mixed_precision=procedure.mixed_precision)

    return run_epoch(procedure, groups, epoch, fit_round, lambda: spark_model.global_step,
                     after_round, describe)
