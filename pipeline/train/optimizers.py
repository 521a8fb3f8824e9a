"""Optimizer, loss and learning-rate schedule built from the training settings.

A rewound cell whose optimizer is reset starts a new optimizer in the middle of the
schedule (open_lth's reset): the step counter, which the schedule reads, stands at ``k·S``,
while the moments are new. Keras' Adam computes its bias correction from that same counter,
so zero moments at step ``k·S`` would get no bias correction and first updates several
times the learning rate; :class:`RestartedAdam` counts the correction from the restart.
RMSProp and SGD in Keras read no step count in their updates, so their zero slots already
are a new optimizer's.
"""

from __future__ import annotations

import keras

from pipeline.train.schedules import WarmupDecay


def make_schedule(train, steps_per_epoch: int,  # noqa: ANN001 - TrainSettings
                  micro_steps: int = 1) -> WarmupDecay:
    """The learning-rate schedule of ``train`` (a TrainSettings) in optimizer steps, called
    with Keras' count of passes (``micro_steps`` per optimizer step)."""
    return WarmupDecay(
        base_lr=train.learning_rate,
        kind=train.lr_schedule,
        warmup_steps=int(round(train.warmup_epochs * steps_per_epoch)),
        total_steps=train.epochs * steps_per_epoch,
        decay_rate=train.lr_decay_rate,
        decay_steps=steps_per_epoch,
        micro_steps=micro_steps,
    )


@keras.saving.register_keras_serializable(package="lottery_spark")
class RestartedAdam(keras.optimizers.Adam):
    """Keras' Adam, new at optimizer step ``moments_from``: its bias correction counts the
    steps since then, while the learning-rate schedule keeps reading the global step.

    Keras' Adam reads ``iterations`` only for the bias correction (the schedule reads the
    raw counter), so this view of ``iterations`` is the one change.
    """

    def __init__(self, *args, moments_from: int = 0, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.moments_from = int(moments_from)

    @property
    def iterations(self):  # noqa: ANN201 - a tensor
        return super().iterations - self.moments_from

    def get_config(self) -> dict:
        return {**super().get_config(), "moments_from": self.moments_from}


def make_optimizer(train, steps_per_epoch: int,  # noqa: ANN001 - TrainSettings
                   moments_from: int = 0) -> keras.optimizers.Optimizer:
    """A fresh optimizer for ``train`` (a TrainSettings); with ``train.micro_batch_size``
    it averages the gradients of ``train.accumulation_steps`` passes into each step.
    ``moments_from`` is the step at which it starts (a reset at the rewind step ``k·S``):
    Adam's bias correction counts from there."""
    steps = train.accumulation_steps
    lr = make_schedule(train, steps_per_epoch, micro_steps=steps)
    name = train.optimizer.lower()
    # named, so that Keras does not number it (sgd_1, ...): the model's config, which
    # records its optimizer, is then the same for every run (executors key compiled models by it)
    common = {"weight_decay": train.weight_decay or None,
              "gradient_accumulation_steps": steps if steps > 1 else None, "name": name}
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=train.momentum, **common)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(
            lr, rho=0.9, momentum=train.momentum, epsilon=1e-3, **common)
    if name == "adam":
        if moments_from:
            return RestartedAdam(lr, moments_from=moments_from, **common)
        return keras.optimizers.Adam(lr, **common)
    raise ValueError(f"train.optimizer: unknown optimizer {train.optimizer!r} (sgd, rmsprop, adam)")


def make_loss(label_smoothing: float) -> keras.losses.Loss:
    """Cross-entropy on one-hot labels (label smoothing needs one-hot targets)."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
