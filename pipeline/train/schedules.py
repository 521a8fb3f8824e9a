"""Learning-rate schedules keyed on the optimizer's global step.

The schedule is a registered Keras object so it survives the optimizer's serialization
into Elephas workers. Because :mod:`pipeline.train.elephas_rounds` carries the optimizer's
``iterations`` counter across rounds, the schedule sees the true global step everywhere.

With gradient accumulation Keras calls the schedule with its count of passes, not of
optimizer steps; ``micro_steps`` (the passes per step) turns one into the other, so an
accumulated step gets the learning rate of the same step taken in one pass.
"""

from __future__ import annotations

import math

import keras
from keras import ops

SCHEDULE_KINDS = ("constant", "cosine", "exponential")


@keras.saving.register_keras_serializable(package="lottery_spark")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``base_lr``, then constant, cosine or exponential decay.

    ``cosine`` decays to ``min_lr`` at ``total_steps``; ``exponential`` multiplies by
    ``decay_rate`` every ``decay_steps`` (the MobileNetV2 paper's 0.98 per epoch). Steps
    are optimizer steps; the step Keras passes is divided by ``micro_steps`` first.
    """

    def __init__(
        self,
        base_lr: float,
        kind: str = "constant",
        warmup_steps: int = 0,
        total_steps: int = 1,
        decay_rate: float = 1.0,
        decay_steps: int = 1,
        min_lr: float = 0.0,
        micro_steps: int = 1,
    ) -> None:
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"unknown schedule {kind!r}; choose from {SCHEDULE_KINDS}")
        self.base_lr = float(base_lr)
        self.kind = kind
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(1, int(total_steps))
        self.decay_rate = float(decay_rate)
        self.decay_steps = max(1, int(decay_steps))
        self.min_lr = float(min_lr)
        self.micro_steps = max(1, int(micro_steps))

    def __call__(self, step):  # noqa: ANN001 - Keras passes a tensor
        if self.micro_steps > 1:
            step = ops.floor_divide(step, self.micro_steps)
        step = ops.cast(step, "float32")
        base = ops.convert_to_tensor(self.base_lr, "float32")
        if self.kind == "constant":
            decayed = base
        elif self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
            decayed = self.min_lr + (base - self.min_lr) * cosine
        else:
            exponent = ops.maximum(step - self.warmup_steps, 0.0) / self.decay_steps
            decayed = base * ops.power(self.decay_rate, ops.floor(exponent))
        if self.warmup_steps <= 0:
            return decayed
        warm = base * (step + 1.0) / self.warmup_steps
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict:
        return {
            "base_lr": self.base_lr,
            "kind": self.kind,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "decay_rate": self.decay_rate,
            "decay_steps": self.decay_steps,
            "min_lr": self.min_lr,
            "micro_steps": self.micro_steps,
        }
