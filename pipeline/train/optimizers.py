"""Optimizer, loss and learning-rate schedule built from the training settings."""

from __future__ import annotations

import keras

from pipeline.train.schedules import WarmupDecay


def make_schedule(train, steps_per_epoch: int) -> WarmupDecay:  # noqa: ANN001 - TrainSettings
    """The learning-rate schedule of ``train`` (a TrainSettings) in optimizer steps."""
    return WarmupDecay(
        base_lr=train.learning_rate,
        kind=train.lr_schedule,
        warmup_steps=int(round(train.warmup_epochs * steps_per_epoch)),
        total_steps=train.epochs * steps_per_epoch,
        decay_rate=train.lr_decay_rate,
        decay_steps=steps_per_epoch,
    )


def make_optimizer(train, steps_per_epoch: int) -> keras.optimizers.Optimizer:  # noqa: ANN001
    """A fresh optimizer for ``train`` (a TrainSettings)."""
    lr = make_schedule(train, steps_per_epoch)
    decay = train.weight_decay or None
    name = train.optimizer.lower()
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=train.momentum, weight_decay=decay)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(
            lr, rho=0.9, momentum=train.momentum, epsilon=1e-3, weight_decay=decay
        )
    if name == "adam":
        return keras.optimizers.Adam(lr, weight_decay=decay)
    raise ValueError(f"train.optimizer: unknown optimizer {train.optimizer!r} (sgd, rmsprop, adam)")


def make_loss(label_smoothing: float) -> keras.losses.Loss:
    """Cross-entropy on one-hot labels (label smoothing needs one-hot targets)."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
