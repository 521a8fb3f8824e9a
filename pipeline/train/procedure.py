"""The training procedure, defined once: local SGD over rounds of whole batches.

Every model of a run is trained by this algorithm: the dense model, every ticket, every
control and the level-0 references. ``workers`` replicas each take ``batch_size`` images
per step; a round gives every replica the same number of whole batches from the round's
weights and optimizer state, and the round ends with their image-weighted average
(:mod:`pipeline.train.local_sgd`). An epoch is ``steps_per_epoch = train_images //
(workers × batch_size)`` steps of every replica; the images left over after the last whole
global batch are skipped that epoch (a different few each epoch, since the order is
reshuffled), so no step ever sees a partial batch and the learning-rate schedule counts
exactly the steps taken. Where a batch does not fit one device, ``micro_batch_size`` splits
each step into consecutive passes whose gradients the optimizer averages (Keras gradient
accumulation): the steps, their images and the schedule stay those of the whole batch;
BatchNorm then normalizes over each pass's images. Preprocessing is the dataset's own
(:meth:`DatasetSplit.read`).

Two executions run it: Elephas rounds across executors (:mod:`pipeline.train.data_parallel`)
and all replicas one after another in one process (:mod:`pipeline.train.in_process`). For
the same seed they train on the same shares in the same order, so they give the same
weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.logs import Progress
from pipeline.models.spec import ModelSpec
from pipeline.seeding import derive_seed
from pipeline.train.rounds import RowSlice, Share, plan_whole_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingProcedure:
    """What to train and how: the data, the replicas, the batch, the rounds, the seeds."""

    spec: ModelSpec
    train_url: str
    num_classes: int
    train_images: int
    workers: int
    batch_size: int  # per replica; the global batch is workers × batch_size
    images_per_task: int  # a replica's images per round, rounded down to whole batches
    augment: bool
    seed: int
    deterministic: bool = False
    mixed_precision: bool = False
    micro_batch_size: int = 0  # images per pass when a step is accumulated (0: batch_size)

    @classmethod
    def of(cls, train, spec: ModelSpec, train_url: str, num_classes: int,  # noqa: ANN001
           train_images: int, workers: int, seed: int, deterministic: bool
           ) -> TrainingProcedure:
        """The procedure of ``train`` (the job's TrainSettings) on ``workers`` replicas."""
        return cls(spec, train_url, num_classes, train_images, workers, train.batch_size,
                   train.round_images_per_worker, train.augment, seed, deterministic,
                   train.mixed_precision, train.micro_batch_size)

    def __post_init__(self) -> None:
        if self.workers < 1 or self.batch_size < 1:
            raise ValueError("workers and batch_size must be at least 1")
        if self.micro_batch_size and self.batch_size % self.micro_batch_size:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} does not divide "
                             f"batch_size {self.batch_size}")
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the train split has {self.train_images} images, fewer than one global batch "
                f"({self.workers} workers x batch {self.batch_size})")

    @property
    def pass_batch_size(self) -> int:
        """Images of one forward/backward pass on a replica."""
        return self.micro_batch_size or self.batch_size

    @property
    def global_batch(self) -> int:
        return self.workers * self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps of every replica per epoch (whole global batches only)."""
        return self.train_images // self.global_batch

    @property
    def steps_per_round(self) -> int:
        return max(1, self.images_per_task // self.batch_size)

    def step_at(self, epoch: int) -> int:
        """The global step after ``epoch`` epochs (the schedule's position when rewound)."""
        return epoch * self.steps_per_epoch

    def epoch_rounds(self, groups: Sequence[RowSlice], epoch: int) -> list[list[Share]]:
        """Epoch ``epoch``'s rounds, each one share per replica, in the epoch's seeded order."""
        plan = plan_whole_batches(list(groups), self.workers, self.steps_per_epoch,
                                  self.batch_size, self.steps_per_round,
                                  seed=derive_seed(self.seed, "epoch", epoch))
        return [[Share(self.train_url, tuple(s)) for s in round_] for round_ in plan]

    def order_seed(self, epoch: int, index: int) -> int:
        """Seed of the mini-batch order inside the shares of round ``index``."""
        return derive_seed(self.seed, "order", epoch, index)

    def flip_seed(self, epoch: int, index: int) -> int | None:
        """Seed of round ``index``'s mirror flips, or None without augmentation."""
        return derive_seed(self.seed, "flip", epoch, index) if self.augment else None


@dataclass
class RoundResult:
    images: int
    tasks: int
    loss: float
    accuracy: float
    seconds: float
    compute_seconds: float  # the slowest replica's training time


@dataclass
class EpochStats:
    epoch: int
    images: int
    rounds: int
    loss: float
    accuracy: float
    seconds: float
    overhead_seconds: float  # round wall time not spent in the slowest replica's training
    first_step: int  # global step before the epoch's first step
    last_step: int  # global step after the epoch
    round_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "epoch", "images", "rounds", "loss", "accuracy", "seconds", "overhead_seconds",
            "first_step", "last_step")}


FitRound = Callable[[list[Share], int, int], RoundResult]


def run_epoch(procedure: TrainingProcedure, groups: Sequence[RowSlice], epoch: int,
              fit_round: FitRound, global_step: Callable[[], int],
              after_round: Callable[[int, int], None] | None = None,
              before_round: Callable[[int, int], None] | None = None) -> EpochStats:
    """Epoch ``epoch`` (1-based) round by round: ``fit_round(shares, epoch, index)`` trains
    one round in whichever execution; ``global_step()`` reads the optimizer's counter;
    ``before_round(index, rounds)`` and ``after_round(index, rounds)`` run on the driver
    around each round."""
    rounds = procedure.epoch_rounds(groups, epoch)
    progress = Progress(f"epoch {epoch} round", len(rounds), log)
    start, first_step = time.monotonic(), global_step()
    images, loss_sum, acc_sum, overhead = 0, 0.0, 0.0, 0.0
    round_seconds = []
    for index, shares in enumerate(rounds):
        if before_round is not None:
            before_round(index, len(rounds))
        result = fit_round(shares, epoch, index)
        images += result.images
        loss_sum += result.loss * result.images
        acc_sum += result.accuracy * result.images
        overhead += max(0.0, result.seconds - result.compute_seconds)
        round_seconds.append(result.seconds)
        progress.step(f"loss {result.loss:.4f} acc {result.accuracy:.3f} "
                      f"({result.images} images, {result.seconds:.1f}s)")
        if after_round is not None:
            after_round(index, len(rounds))
    return EpochStats(
        epoch=epoch, images=images, rounds=len(rounds), loss=loss_sum / max(images, 1),
        accuracy=acc_sum / max(images, 1), seconds=time.monotonic() - start,
        overhead_seconds=overhead, first_step=first_step, last_step=global_step(),
        round_seconds=round_seconds,
    )
