"""MobileNetV2 from ``keras.applications`` (never pretrained), with in-model input scaling."""

from __future__ import annotations

import keras

from pipeline.models.registry import register_model


@register_model("mobilenet_v2")
def mobilenet_v2(
    *,
    image_size: int,
    classes: int,
    alpha: float = 1.0,
    channels: int = 3,
    grayscale: bool = False,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
    **_: object,
) -> keras.Model:
    """MobileNetV2 for ``image_size`` squares (>= 32) of 0..255 pixels.

    A ``Rescaling`` layer maps 0..255 to [-1, 1] (what ``mobilenet_v2.preprocess_input``
    does). The head is global average pooling, optional dropout and a Dense layer named
    ``predictions``, as in ``include_top=True``.
    """
    if image_size < 32:
        raise ValueError(f"mobilenet_v2 needs image_size >= 32, got {image_size}")
    if grayscale:
        raise ValueError("mobilenet_v2 takes colour images; grayscale is for the small networks")
    inputs = keras.Input(shape=(image_size, image_size, channels), name="image")
    scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    base = keras.applications.MobileNetV2(
        input_tensor=scaled,
        include_top=False,
        weights=None,
        alpha=alpha,
        pooling=None,
    )
    # named, unlike Keras' own pooling layer, so that every build has the same config (the
    # key under which executors keep a compiled model)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"mobilenet_v2_{alpha:g}_{image_size}")
