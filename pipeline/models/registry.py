"""Model registry keyed by name, with one ``create_model`` entry point (the timm style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from pipeline.seeding import seeded

ModelBuilder = Callable[..., keras.Model]

CLASSIFIER = "predictions"  # the output Dense layer's name in every registered model

_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: make a builder available to :func:`create_model` under ``name``."""

    def wrap(fn: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def create_model(
    name: str,
    *,
    image_size: int,
    classes: int,
    alpha: float = 1.0,
    seed: int = 0,
    channels: int = 3,
    grayscale: bool = False,
    dropout: float = 0.0,
    **kwargs: Any,
) -> keras.Model:
    """Build registered model ``name``; the same arguments give bit-identical initial weights.

    Inputs are float32 pixel values in 0..255 (see :mod:`pipeline.models`). Arguments a
    model has no use for (``alpha`` for LeNet, say) are ignored; ``grayscale`` (average the
    colour channels first) is for the small networks only.
    """
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None
    if image_size < 1 or classes < 1 or channels < 1:
        raise ValueError("image_size, classes and channels must be positive")
    with seeded(seed):
        return builder(
            image_size=image_size,
            classes=classes,
            alpha=alpha,
            channels=channels,
            grayscale=grayscale,
            dropout=dropout,
            **kwargs,
        )
