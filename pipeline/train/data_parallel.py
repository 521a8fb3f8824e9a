"""Data-parallel training of one model across the executors with Elephas, epoch by epoch.

Each epoch is a sequence of bounded rounds (:mod:`pipeline.train.rounds`); every round is
one Spark stage in which each task reads its share of row groups from the Petastorm split,
trains on it from the broadcast weights and optimizer state, and returns weight deltas and
optimizer variables that :class:`~pipeline.train.elephas_rounds.RoundSparkModel` averages.
So the learning-rate schedule, momentum and BatchNorm statistics continue across rounds
as they would in one process.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import keras
import numpy as np

from pipeline.data.dataset import DatasetSplit
from pipeline.logs import Progress
from pipeline.models.spec import ModelSpec
from pipeline.seeding import derive_seed
from pipeline.train.elephas_rounds import RoundSparkModel
from pipeline.train.rounds import RowSlice, Share, epoch_rounds

log = logging.getLogger(__name__)


@dataclass
class DataParallelJob:
    """What to train and how the data is cut; everything a round needs."""

    spec: ModelSpec
    train_url: str
    num_classes: int
    workers: int
    images_per_task: int
    batch_size: int
    augment: bool
    seed: int
    deterministic: bool = False


@dataclass
class EpochStats:
    epoch: int
    images: int
    rounds: int
    loss: float
    accuracy: float
    seconds: float
    overhead_seconds: float  # round wall time not spent in the slowest task's model.fit
    round_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "epoch", "images", "rounds", "loss", "accuracy", "seconds", "overhead_seconds")}


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
    model: keras.Model, job: DataParallelJob, optimizer: keras.optimizers.Optimizer,
    loss: keras.losses.Loss, optimizer_state: list[np.ndarray] | None = None,
) -> RoundSparkModel:
    """Compile ``model`` and wrap it; ``optimizer_state`` resumes an earlier run."""
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    spark_model = RoundSparkModel(model, custom_objects=job.spec.custom_objects,
                                  batch_size=job.batch_size)
    spark_model.optimizer_state = optimizer_state
    return spark_model


def train_epoch(
    sc, spark_model: RoundSparkModel, job: DataParallelJob,  # noqa: ANN001 - SparkContext
    groups: list[RowSlice], epoch: int,
) -> EpochStats:
    """Train epoch ``epoch`` (1-based) over all rounds; the master model holds the result."""
    rounds = epoch_rounds(job.train_url, groups, job.workers, job.images_per_task,
                          seed=derive_seed(job.seed, "epoch", epoch))
    progress = Progress(f"epoch {epoch} round", len(rounds), log)
    start = time.monotonic()
    images, loss_sum, acc_sum, overhead = 0, 0.0, 0.0, 0.0
    round_seconds = []
    for index, shares in enumerate(rounds):
        records = functools.partial(
            share_records,
            num_classes=job.num_classes,
            image_size=job.spec.image_size,
            flip_seed=derive_seed(job.seed, "flip", epoch, index) if job.augment else None,
        )
        rdd = sc.parallelize(shares, len(shares)).mapPartitions(records)
        result = spark_model.fit_round(rdd, seed=derive_seed(job.seed, "order", epoch, index),
                                       deterministic=job.deterministic)
        images += result.images
        loss_sum += result.loss * result.images
        acc_sum += result.accuracy * result.images
        overhead += max(0.0, result.seconds - result.compute_seconds)
        round_seconds.append(result.seconds)
        progress.step(f"loss {result.loss:.4f} acc {result.accuracy:.3f} "
                      f"({result.images} images, {result.seconds:.1f}s)")
    return EpochStats(
        epoch=epoch,
        images=images,
        rounds=len(rounds),
        loss=loss_sum / max(images, 1),
        accuracy=acc_sum / max(images, 1),
        seconds=time.monotonic() - start,
        overhead_seconds=overhead,
        round_seconds=round_seconds,
    )
