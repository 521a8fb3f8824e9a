"""Optimizer, loss and learning-rate schedule built from the training settings."""

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


def make_optimizer(train, steps_per_epoch: int) -> keras.optimizers.Optimizer:  # noqa: ANN001
    """A fresh optimizer for ``train`` (a TrainSettings); with ``train.micro_batch_size``
    it averages the gradients of ``train.accumulation_steps`` passes into each step."""
    steps = train.accumulation_steps
    lr = make_schedule(train, steps_per_epoch, micro_steps=steps)
    common = {"weight_decay": train.weight_decay or None,
              "gradient_accumulation_steps": steps if steps > 1 else None}
    name = train.optimizer.lower()
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=train.momentum, **common)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(
            lr, rho=0.9, momentum=train.momentum, epsilon=1e-3, **common)
    if name == "adam":
        return keras.optimizers.Adam(lr, **common)
    raise ValueError(f"train.optimizer: unknown optimizer {train.optimizer!r} (sgd, rmsprop, adam)")


def make_loss(label_smoothing: float) -> keras.losses.Loss:
    """Cross-entropy on one-hot labels (label smoothing needs one-hot targets)."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
