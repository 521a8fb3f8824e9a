"""The masked twin of a :class:`~pipeline.models.spec.ModelSpec`, picklable for executors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras

from pipeline.models.spec import ModelSpec


@dataclass(frozen=True)
class MaskedSpec:
    """Builds ``plain`` and converts it to masked layers; the same interface as ModelSpec."""

    plain: ModelSpec

    @property
    def image_size(self) -> int:
        return self.plain.image_size

    def build(self) -> keras.Model:
        from pipeline.tickets.conversion import to_masked

        return to_masked(self.plain.build())

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.plain), "masked": True}

    def architecture(self) -> MaskedSpec:
        """This network with any initialization (:meth:`ModelSpec.architecture`)."""
        return MaskedSpec(self.plain.architecture())

    @property
    def custom_objects(self) -> dict[str, Any]:
        """Objects ``model_from_json`` needs for this model: the masked layers."""
        from pipeline.tickets.masked_layers import custom_objects

        return custom_objects()
