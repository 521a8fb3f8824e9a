"""Elephas synchronous training, extended to carry optimizer state across bounded rounds.

Stock ``elephas.spark_model.SparkModel.fit`` turns each whole partition into one numpy
array and compiles a fresh optimizer every call, so momentum, the step counter (and with
it the learning-rate schedule) restart each time. Here training is fed in *rounds*: each
round's RDD holds at most a fixed number of images per task, which bounds executor memory
whatever the dataset size. :class:`RoundWorker` extends Elephas's ``SparkWorker`` to start
from the broadcast optimizer variables and to return its final ones; :class:`RoundSparkModel`
averages weight deltas and optimizer variables (weighted by the images each task saw) and
advances the global step, so the optimizer behaves as one continuous run.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import keras
import numpy as np
from elephas.spark_model import SparkModel
from elephas.worker import SparkWorker
from pyspark import RDD

from pipeline.train.local_sgd import average_round, train_share
from pipeline.train.model_cache import ModelCache
from pipeline.train.procedure import RoundResult

log = logging.getLogger(__name__)

_COMPILED: ModelCache[tuple[Any, Any]] = ModelCache()


def _stack(records: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([r[0] for r in records])
    y = np.stack([r[1] for r in records])
    return x, y


class RoundWorker(SparkWorker):
    """Elephas ``SparkWorker`` that resumes and returns the optimizer's variables."""

    def __init__(self, *args: Any, optimizer_state: Any = None, quiet: bool = True, **kw: Any):
        super().__init__(*args, **kw)
        self.optimizer_state = optimizer_state
        self.quiet = quiet

    def _compiled_model(self):  # noqa: ANN202
        """The compiled model and its optimizer, kept in this Python worker across rounds
        (:mod:`pipeline.train.model_cache`).

        Stock Elephas rebuilds and recompiles the model for every call, which on a small
        round costs more than the training itself (graph tracing). Spark reuses Python
        workers, so the compiled model is kept, keyed by everything that defines it; its
        weights and optimizer variables are overwritten from the broadcast every round.
        """
        key = hashlib.sha256(
            repr((self.json, self.master_optimizer, self.master_loss, self.master_metrics,
                  sorted(self.custom_objects or {}),
                  keras.mixed_precision.global_policy().name)).encode()
        ).hexdigest()
        return _COMPILED.get(key, self._build)

    def _build(self):  # noqa: ANN202
        from keras.models import model_from_json
        from keras.optimizers import deserialize as deserialize_optimizer

        from pipeline.train.precision import json_under_global_policy

        optimizer = deserialize_optimizer(self.master_optimizer)
        model = model_from_json(json_under_global_policy(self.json), self.custom_objects)
        model.compile(optimizer=optimizer, loss=self.master_loss, metrics=self.master_metrics)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    def train(self, data_iterator):  # noqa: ANN001, ANN201 - Spark's mapPartitions contract
        from pyspark import TaskContext

        import pipeline.train.optimizers  # noqa: F401 - registers the optimizer and schedule
        from pipeline.train.devices import configure_task_devices

        config = self.train_config
        configure_task_devices(bool(config.get("mixed_precision", False)))
        records = list(data_iterator)
        if not records:
            return
        x, y = _stack(records)
        del records
        share = TaskContext.get().partitionId() if TaskContext.get() is not None else 0
        model, optimizer = self._compiled_model()
        state = self.optimizer_state.value if self.optimizer_state is not None else None
        yield train_share(model, optimizer, self.parameters.value, state, x, y,
                          int(config["batch_size"]), int(config["seed"]), share,
                          bool(config.get("deterministic", False)))


class RoundSparkModel(SparkModel):
    """An Elephas ``SparkModel`` trained round by round with continuous optimizer state."""

    def __init__(self, model: Any, custom_objects: dict | None = None, batch_size: int = 32):
        super().__init__(model, custom_objects=custom_objects,
                         batch_size=batch_size)
        self.optimizer_state: list[np.ndarray] | None = None

    @property
    def global_step(self) -> int:
        if not self.optimizer_state:
            return 0
        return int(self.optimizer_state[0])

    def fit_round(
        self, rdd: RDD, seed: int = 0, deterministic: bool = False,
        mixed_precision: bool = False,
    ) -> RoundResult:
        """Train one round: every partition of ``rdd`` is one worker's share.

        ``seed`` orders the mini-batches of every share (with the share's index);
        ``deterministic`` turns on TensorFlow op determinism in the workers.
        """
        import keras

        start = time.monotonic()
        sc = rdd.context
        network = self._master_network
        serialized_optimizer = keras.optimizers.serialize(self.master_optimizer)
        weights = sc.broadcast(network.get_weights())
        opt_state = sc.broadcast(self.optimizer_state) if self.optimizer_state else None
        train_config = {"epochs": 1, "batch_size": self.batch_size, "seed": seed,
                        "deterministic": deterministic, "mixed_precision": mixed_precision}
        worker = RoundWorker(
            network.to_json(), weights, train_config, serialized_optimizer,
            self.master_loss, self.master_metrics, self.custom_objects,
            optimizer_state=opt_state,
        )
        try:
            outcomes = rdd.mapPartitions(worker.train).collect()
        finally:
            weights.destroy()
            if opt_state is not None:
                opt_state.destroy()
        weights, self.optimizer_state, loss, accuracy = average_round(
            network.get_weights(), outcomes)
        network.set_weights(weights)
        return RoundResult(
            images=sum(o["images"] for o in outcomes),
            tasks=len(outcomes),
            loss=loss,
            accuracy=accuracy,
            seconds=time.monotonic() - start,
            compute_seconds=max(o["seconds"] for o in outcomes),
        )
