"""A picklable description of a model, so executor tasks can rebuild it by name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras

from pipeline.models.registry import create_model


@dataclass(frozen=True)
class ModelSpec:
    """Registry name and arguments (the masked twin is :class:`pipeline.tickets.MaskedSpec`)."""

    name: str
    image_size: int
    classes: int
    alpha: float = 1.0
    seed: int = 0
    bn_momentum: float | None = None  # None keeps the architecture's own
    grayscale: bool = False
    slimming_l1: float = 0.0  # L1 on every BatchNorm's gamma (network slimming)
    layout: str = "keras"  # mobilenet_v2's layer layout (pipeline.models.mobilenet_v2)

    def build(self) -> keras.Model:
        extra = {} if self.layout == "keras" else {"layout": self.layout}
        model = create_model(self.name, image_size=self.image_size, classes=self.classes,
                             alpha=self.alpha, seed=self.seed, grayscale=self.grayscale,
                             **extra)
        if self.bn_momentum is not None:
            # Keras' MobileNetV2 uses 0.999, which needs thousands of steps before the
            # moving statistics are usable; small studies train far fewer.
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = self.bn_momentum
        if self.slimming_l1:
            from pipeline.models.batch_norm import add_slimming_penalty

            add_slimming_penalty(model, self.slimming_l1)
        return model

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def architecture(self) -> ModelSpec:
        """This network with any initialization (seed 0): what a compiled model kept for
        reuse is keyed by, since every use overwrites all its weights."""
        return dataclasses.replace(self, seed=0)

    @property
    def custom_objects(self) -> dict[str, Any]:
        """Objects ``model_from_json`` needs for this model: none, its layers are Keras'."""
        return {}

