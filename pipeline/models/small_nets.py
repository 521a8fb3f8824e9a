"""The small networks of Frankle & Carbin's lottery-ticket paper, for quick studies.

``lenet_300_100``: fully connected 300-100-classes. ``conv4``: two blocks of two 3x3
convolutions (64 then 128 filters) with 2x2 max pooling, then Dense 256-256-classes.
Both scale 0..255 pixels to [0, 1] with a ``Rescaling`` layer. With ``grayscale`` they
first average R, G and B into one channel, so that a gray image (R = G = B) is seen as the
paper's one-channel input (LeNet-300-100 on 28×28 then has exactly the paper's 784 inputs).
The average is built from stock layers with no weights (``Permute``, ``AveragePooling2D``),
so nothing is added to prune and an exported model loads without custom objects. Every
layer has a fixed name, so masks keyed by layer name carry over between builds.
"""

from __future__ import annotations

import keras

from pipeline.models.registry import register_model


def _head(x: keras.KerasTensor, classes: int, dropout: float, activation: str | None) -> object:
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.layers.Dense(classes, activation=activation, name="predictions")(x)


def _scaled_input(image_size: int, channels: int, grayscale: bool
                  ) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=(image_size, image_size, channels), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if grayscale and channels > 1:
        # [H, W, C] -> [C, H, W], mean over the C rows, -> [H, W, 1]
        x = keras.layers.Permute((3, 1, 2), name="gray_channels_first")(x)
        x = keras.layers.AveragePooling2D((channels, 1), name="gray_mean")(x)
        x = keras.layers.Permute((2, 3, 1), name="gray_channels_last")(x)
    return inputs, x


@register_model("lenet_300_100")
def lenet_300_100(
    *,
    image_size: int,
    classes: int,
    channels: int = 3,
    grayscale: bool = False,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
    **_: object,
) -> keras.Model:
    inputs, x = _scaled_input(image_size, channels, grayscale)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(300, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(100, activation="relu", name="fc2")(x)
    outputs = _head(x, classes, dropout, classifier_activation)
    return keras.Model(inputs, outputs, name="lenet_300_100")


@register_model("conv4")
def conv4(
    *,
    image_size: int,
    classes: int,
    channels: int = 3,
    grayscale: bool = False,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
    **_: object,
) -> keras.Model:
    if image_size < 4:
        raise ValueError(f"conv4 needs image_size >= 4, got {image_size}")
    inputs, x = _scaled_input(image_size, channels, grayscale)
    for block, filters in ((1, 64), (2, 128)):
        for i in (1, 2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"conv{2 * block - 2 + i}"
            )(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(256, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(256, activation="relu", name="fc2")(x)
    outputs = _head(x, classes, dropout, classifier_activation)
    return keras.Model(inputs, outputs, name="conv4")
