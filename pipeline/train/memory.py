"""Device memory of training, estimated from the model and the image size, and the
micro-batch that fits it.

A training pass holds every layer's output until the backward pass has used it; the
backward pass adds the gradients of the layer it is in, at most about two of the largest
outputs at a time. Beside that, each trainable weight has its value, its gradient,
its optimizer slots and (when accumulating) its accumulator; under ``mixed_float16`` the
activations are 2 bytes and each weight also has a float16 copy. Convolution workspaces
and allocator fragmentation are not modelled, so a device is taken to offer
``USABLE_FRACTION`` of its memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

USABLE_FRACTION = 0.8
GRADIENT_COPIES = 2  # gradients alive at once in the backward pass, each the largest output
GIB = 1024**3


@dataclass(frozen=True)
class TrainingMemory:
    """``fixed_bytes + per_image_bytes × images`` of one pass on one device."""

    fixed_bytes: int
    per_image_bytes: int

    def bytes_for(self, images: int) -> int:
        return self.fixed_bytes + self.per_image_bytes * images

    def describe(self, images: int) -> str:
        return (f"{self.bytes_for(images) / GIB:.1f} GiB for {images} images "
                f"({self.fixed_bytes / GIB:.2f} GiB weights and optimizer, "
                f"{self.per_image_bytes / 2**20:.1f} MiB per image)")


def optimizer_slots(train, accumulating: bool) -> int:  # noqa: ANN001 - TrainSettings
    """Variables each trainable weight has in the optimizer of ``train``."""
    name = train.optimizer.lower()
    if name == "sgd":
        slots = 1 if train.momentum else 0
    elif name == "rmsprop":
        slots = 1 + (1 if train.momentum else 0)
    else:
        slots = 2
    return slots + (1 if accumulating else 0)


def _leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    leaves = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            leaves.extend(_leaf_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            leaves.append(layer)
    return leaves


def _elements_per_image(shape: tuple) -> int:
    return math.prod(int(d) for d in shape[1:])


def estimate_training_memory(model: keras.Model, train,  # noqa: ANN001 - TrainSettings
                             accumulating: bool | None = None) -> TrainingMemory:
    """The memory a pass of ``model`` (built) under ``train`` needs; ``accumulating``
    (default: whether ``train`` accumulates) adds the gradient accumulators."""
    if accumulating is None:
        accumulating = train.accumulation_steps > 1
    activation_bytes = 2 if train.mixed_precision else 4
    sizes = []
    for layer in _leaf_layers(model):
        outputs = layer.output if isinstance(layer.output, list | tuple) else [layer.output]
        sizes.extend(_elements_per_image(o.shape) for o in outputs)
    per_image = (_elements_per_image(model.inputs[0].shape) * 4
                 + (sum(sizes) + GRADIENT_COPIES * max(sizes)) * activation_bytes)
    trainable = sum(math.prod(v.shape) for v in model.trainable_variables)
    frozen = sum(math.prod(v.shape) for v in model.non_trainable_variables)
    per_weight = (4 * (2 + optimizer_slots(train, accumulating))
                  + (2 if train.mixed_precision else 0))
    return TrainingMemory(fixed_bytes=trainable * per_weight + frozen * 4,
                          per_image_bytes=per_image)


def fitting_micro_batch(batch_size: int, whole: TrainingMemory, accumulating: TrainingMemory,
                        device_bytes: int) -> int:
    """``batch_size`` when its pass (memory ``whole``) fits ``USABLE_FRACTION`` of
    ``device_bytes``, else the largest divisor whose pass (memory ``accumulating``) does;
    ValueError when not even one image fits."""
    usable = USABLE_FRACTION * device_bytes
    if whole.bytes_for(batch_size) <= usable:
        return batch_size
    for images in range(batch_size - 1, 0, -1):
        if batch_size % images == 0 and accumulating.bytes_for(images) <= usable:
            return images
    raise ValueError(f"one image needs {accumulating.describe(1)}, more than {USABLE_FRACTION:.0%} "
                     f"of the device's {device_bytes / GIB:.1f} GiB; lower model.image_size "
                     "or model.alpha, or turn on train.mixed_precision")
