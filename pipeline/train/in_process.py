"""The training procedure executed in one process: every replica of a round in turn.

A grid cell in ``grid.mode: task`` trains here, inside its one Spark task. Each round, each
share is read (:meth:`DatasetSplit.read`, the dense stage's decoding and flips), trained
from the round's weights and optimizer state, and the replicas are averaged, exactly as
the Elephas rounds of :mod:`pipeline.train.data_parallel` do across executors. Only one
share's images are in memory at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import numpy as np

from pipeline.data.dataset import DatasetSplit
from pipeline.seeding import derive_seed
from pipeline.train.local_sgd import average_round, train_share
from pipeline.train.model_cache import ModelCache, config_key
from pipeline.train.procedure import EpochStats, RoundResult, TrainingProcedure, run_epoch
from pipeline.train.rounds import RowSlice, Share
from pipeline.train.variable_io import get_weights, set_weights

_COMPILED: ModelCache[tuple[keras.Model, keras.optimizers.Optimizer]] = ModelCache()


def compiled_model(spec, train, steps_per_epoch: int,  # noqa: ANN001 - a (Masked)Spec, TrainSettings
                   head_only: bool = False, moments_from: int = 0,
                   ) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """A compiled model and its built optimizer, kept in this (reused) Python worker by
    architecture, head-only, dtype policy and the optimizer's and loss's own configs
    (:mod:`pipeline.train.model_cache`), as the Elephas worker keeps its models: the next
    cell (of any replicate, or of a rewind point whose restart step the optimizer does not
    read) then costs its training, not a model build and a graph trace. Every cell
    overwrites the weights, masks and optimizer variables.

    ``head_only`` freezes every layer but the classifier before compiling (BatchNorm layers
    then also keep their moving statistics), so only the classifier trains.
    ``moments_from`` is the optimizer's restart step (:func:`make_optimizer`).
    """
    from pipeline.models import CLASSIFIER
    from pipeline.train.optimizers import make_loss, make_optimizer

    optimizer = make_optimizer(train, steps_per_epoch, moments_from)
    loss = make_loss(train.label_smoothing)
    key = (spec.architecture(), head_only, keras.mixed_precision.global_policy().name,
           config_key(keras.optimizers.serialize(optimizer)),
           config_key(keras.losses.serialize(loss)))

    def build() -> tuple[keras.Model, keras.optimizers.Optimizer]:
        # No keras.backend.clear_session() here: it would also reset the global dtype
        # policy that train.mixed_precision set for this task.
        model = spec.build()
        if head_only:
            for layer in model.layers:
                layer.trainable = layer.name == CLASSIFIER
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        optimizer.build(model.trainable_variables)
        return model, optimizer

    return _COMPILED.get(key, build)


class InProcessRounds:
    """``model`` (compiled with ``optimizer``, e.g. by :func:`compiled_model`) trained by
    ``procedure`` in this process; holds the optimizer's state between rounds."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                 procedure: TrainingProcedure, optimizer_state: list[np.ndarray] | None = None,
                 read_workers: int = 1):
        self.model, self.optimizer, self.procedure = model, optimizer, procedure
        self.optimizer_state = optimizer_state
        self.read_workers = read_workers

    @property
    def global_step(self) -> int:
        return int(self.optimizer_state[0]) if self.optimizer_state else 0

    def _read(self, share: Share, flip_seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        key = None if flip_seed is None else derive_seed(flip_seed, repr(share.slices))
        x, labels = DatasetSplit.of(share.split_url).read(
            share.slices, self.procedure.spec.image_size, flip_key=key,
            parallel=self.read_workers)
        return x, np.eye(self.procedure.num_classes, dtype=np.float32)[labels]

    def fit_round(self, shares: list[Share], epoch: int, index: int) -> RoundResult:
        start = time.monotonic()
        base = get_weights(self.model)
        seed = self.procedure.order_seed(epoch, index)
        flip_seed = self.procedure.flip_seed(epoch, index)
        outcomes = []
        for share_index, share in enumerate(shares):
            x, y = self._read(share, flip_seed)
            outcomes.append(train_share(
                self.model, self.optimizer, base, self.optimizer_state, x, y,
                self.procedure.pass_batch_size, seed, share_index,
                self.procedure.deterministic))
        weights, self.optimizer_state, loss, accuracy = average_round(base, outcomes)
        set_weights(self.model, weights)
        return RoundResult(images=sum(o["images"] for o in outcomes), tasks=len(outcomes),
                           loss=loss, accuracy=accuracy, seconds=time.monotonic() - start,
                           compute_seconds=sum(o["seconds"] for o in outcomes))

    def train_epoch(self, groups: Sequence[RowSlice], epoch: int) -> EpochStats:
        """Epoch ``epoch`` (1-based); the model holds the result."""
        return run_epoch(self.procedure, groups, epoch, self.fit_round, lambda: self.global_step)
