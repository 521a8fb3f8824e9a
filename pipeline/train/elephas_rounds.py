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
from dataclasses import dataclass
from typing import Any

import numpy as np
from elephas.spark_model import SparkModel
from elephas.worker import SparkWorker
from pyspark import RDD

log = logging.getLogger(__name__)

_COMPILED: dict[str, tuple[Any, Any]] = {}


def _stack(records: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([r[0] for r in records])
    y = np.stack([r[1] for r in records])
    return x, y


def _train_one_pass(model, x: np.ndarray, y: np.ndarray, config: dict) -> dict:  # noqa: ANN001
    """One pass over ``x`` in mini-batches with ``train_on_batch``, shuffled by the round's
    seed and the share's index, so a round trains the same way every time it runs.

    Equivalent to ``model.fit(epochs=1)`` but without building a fresh data pipeline on
    every call, which on a small round costs as much as the training. Returns a
    fit-style history: the loss and metrics averaged over the pass.
    """
    batch = int(config.get("batch_size", 32))
    if config.get("shuffle", True):
        rng = np.random.default_rng([int(config.get("seed", 0)), int(config.get("share", 0))])
        order = rng.permutation(len(x))
    else:
        order = np.arange(len(x))
    model.reset_metrics()  # Keras 3 metrics then average over this pass, as fit's do
    logs: dict = {}
    for begin in range(0, len(x), batch):
        index = order[begin : begin + batch]
        logs = model.train_on_batch(x[index], y[index], return_dict=True)
    return {key: [float(value)] for key, value in logs.items()}


class RoundWorker(SparkWorker):
    """Elephas ``SparkWorker`` that resumes and returns the optimizer's variables."""

    def __init__(self, *args: Any, optimizer_state: Any = None, quiet: bool = True, **kw: Any):
        super().__init__(*args, **kw)
        self.optimizer_state = optimizer_state
        self.quiet = quiet

    def _compiled_model(self):  # noqa: ANN202
        """The compiled model and its optimizer, reused across rounds in this Python worker.

        Stock Elephas rebuilds and recompiles the model for every call, which on a small
        round costs more than the training itself (graph tracing). Spark reuses Python
        workers, so the compiled model is kept, keyed by everything that defines it; its
        weights and optimizer variables are overwritten from the broadcast every round.
        """
        from keras.models import model_from_json
        from keras.optimizers import deserialize as deserialize_optimizer

        key = hashlib.sha256(
            repr((self.json, self.master_optimizer, self.master_loss, self.master_metrics,
                  sorted(self.custom_objects or {}))).encode()
        ).hexdigest()
        cached = _COMPILED.get(key)
        if cached is None:
            _COMPILED.clear()  # one model per worker: bounds memory
            optimizer = deserialize_optimizer(self.master_optimizer)
            model = model_from_json(self.json, self.custom_objects)
            model.compile(optimizer=optimizer, loss=self.master_loss,
                          metrics=self.master_metrics)
            optimizer.build(model.trainable_variables)
            cached = _COMPILED[key] = (model, optimizer)
        return cached

    def train(self, data_iterator):  # noqa: ANN001, ANN201 - Spark's mapPartitions contract
        import keras
        from pyspark import TaskContext

        import pipeline.train.schedules  # noqa: F401 - registers the LR schedule for deserialize
        from pipeline.seeding import derive_seed, make_deterministic
        from pipeline.train.devices import configure_task_devices

        configure_task_devices()
        records = list(data_iterator)
        if not records:
            return
        x, y = _stack(records)
        del records
        share = TaskContext.get().partitionId() if TaskContext.get() is not None else 0
        config = {**self.train_config, "share": share}
        make_deterministic(derive_seed(int(config.get("seed", 0)), share),
                           enabled=bool(config.get("deterministic", False)))
        model, optimizer = self._compiled_model()
        model.set_weights(self.parameters.value)
        state = self.optimizer_state.value if self.optimizer_state is not None else None
        for i, var in enumerate(optimizer.variables):
            var.assign(state[i] if state is not None else np.zeros(var.shape, var.dtype))
        before = model.get_weights()
        start = time.monotonic()
        history = _train_one_pass(model, x, y, config)
        seconds = time.monotonic() - start
        after = model.get_weights()
        deltas = [b - a for b, a in zip(before, after, strict=True)]
        opt_vars = [np.asarray(keras.ops.convert_to_numpy(v)) for v in optimizer.variables]
        yield {
            "deltas": deltas,
            "optimizer": opt_vars,
            "history": history,
            "images": int(x.shape[0]),
            "seconds": seconds,
        }


@dataclass
class RoundResult:
    images: int
    tasks: int
    loss: float
    accuracy: float
    seconds: float
    compute_seconds: float


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
        self, rdd: RDD, shuffle: bool = True, seed: int = 0, deterministic: bool = False
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
        train_config = {"epochs": 1, "batch_size": self.batch_size, "shuffle": shuffle,
                        "seed": seed, "deterministic": deterministic}
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
        if not outcomes:
            raise RuntimeError("a training round produced no results: its RDD was empty")
        total = sum(o["images"] for o in outcomes)
        base = network.get_weights()
        new_weights = [
            b - sum(o["deltas"][i] * (o["images"] / total) for o in outcomes)
            for i, b in enumerate(base)
        ]
        network.set_weights(new_weights)
        self.optimizer_state = _average_optimizer_state(outcomes, total)
        loss = sum(o["history"]["loss"][-1] * o["images"] for o in outcomes) / total
        acc_key = next((k for k in outcomes[0]["history"] if "acc" in k), None)
        acc = (
            sum(o["history"][acc_key][-1] * o["images"] for o in outcomes) / total
            if acc_key else float("nan")
        )
        return RoundResult(
            images=total,
            tasks=len(outcomes),
            loss=float(loss),
            accuracy=float(acc),
            seconds=time.monotonic() - start,
            compute_seconds=max(o["seconds"] for o in outcomes),
        )


def _average_optimizer_state(outcomes: list[dict], total: int) -> list[np.ndarray]:
    """Image-weighted mean of the optimizer variables; the step counter takes the maximum."""
    first = outcomes[0]["optimizer"]
    averaged = []
    for i, value in enumerate(first):
        if i == 0:  # Keras optimizers keep their ``iterations`` counter first
            averaged.append(np.max([o["optimizer"][0] for o in outcomes], axis=0))
            continue
        mean = sum(o["optimizer"][i].astype(np.float64) * (o["images"] / total) for o in outcomes)
        averaged.append(np.asarray(mean, dtype=value.dtype))
    return averaged
