"""MobileNetV2 (never pretrained), with in-model input scaling, in two layouts.

``layout="keras"`` is ``keras.applications.MobileNetV2``. ``layout="xnnpack"`` is the same
network built here layer by layer, with the one change XNNPACK's sparse inference path
needs at its entry: the first 3×3 stride-2 convolution pads one pixel on every side
(``ZeroPadding2D`` then ``valid``) where TensorFlow's ``same`` pads only the bottom and
right at even sizes. The output sizes, layer names and weight shapes are those of the
Keras layout, so policies and masks carry over; the weights do not (the first convolution
sees other pixels), so a network must be trained in the layout it is deployed in. The
network ends, in both layouts, in the spatial mean (``GlobalAveragePooling2D``, a TFLite
``MEAN``) that the sparse path also asks for.
"""

from __future__ import annotations

from typing import Literal

import keras

from pipeline.models.registry import register_model

Layout = Literal["keras", "xnnpack"]
LAYOUTS = ("keras", "xnnpack")
# (expansion, output channels before alpha, stride) of blocks 1..16 (block 0 expands by 1)
_BLOCKS = [(6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2), (6, 64, 1),
           (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1), (6, 160, 2),
           (6, 160, 1), (6, 160, 1), (6, 320, 1)]
_BN = {"epsilon": 1e-3, "momentum": 0.999}


def _divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _block(x: keras.KerasTensor, expansion: int, filters: int, stride: int, alpha: float,
           block_id: int) -> keras.KerasTensor:
    """An inverted-residual block named as keras.applications names it."""
    layers = keras.layers
    inputs, channels = x, x.shape[-1]
    out = _divisible(int(filters * alpha))
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    if block_id:
        x = layers.Conv2D(expansion * channels, 1, padding="same", use_bias=False,
                          name=prefix + "expand")(x)
        x = layers.BatchNormalization(name=prefix + "expand_BN", **_BN)(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    if stride == 2:
        # keras.applications' correct_pad: (0, 1) on each axis at even sizes
        pad = [(0, 1) if d % 2 == 0 else (1, 1) for d in x.shape[1:3]]
        x = layers.ZeroPadding2D(padding=pad, name=prefix + "pad")(x)
    x = layers.DepthwiseConv2D(3, strides=stride, use_bias=False,
                               padding="same" if stride == 1 else "valid",
                               name=prefix + "depthwise")(x)
    x = layers.BatchNormalization(name=prefix + "depthwise_BN", **_BN)(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = layers.Conv2D(out, 1, padding="same", use_bias=False, name=prefix + "project")(x)
    x = layers.BatchNormalization(name=prefix + "project_BN", **_BN)(x)
    if channels == out and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


def _xnnpack_base(x: keras.KerasTensor, alpha: float) -> keras.KerasTensor:
    layers = keras.layers
    x = layers.ZeroPadding2D(1, name="Conv1_pad")(x)
    x = layers.Conv2D(_divisible(32 * alpha), 3, strides=2, padding="valid", use_bias=False,
                      name="Conv1")(x)
    x = layers.BatchNormalization(name="bn_Conv1", **_BN)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    x = _block(x, 1, 16, 1, alpha, 0)
    for block_id, (expansion, filters, stride) in enumerate(_BLOCKS, start=1):
        x = _block(x, expansion, filters, stride, alpha, block_id)
    x = layers.Conv2D(_divisible(1280 * alpha) if alpha > 1.0 else 1280, 1, use_bias=False,
                      name="Conv_1")(x)
    x = layers.BatchNormalization(name="Conv_1_bn", **_BN)(x)
    return layers.ReLU(6.0, name="out_relu")(x)


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
    layout: Layout = "keras",
    **_: object,
) -> keras.Model:
    """MobileNetV2 for ``image_size`` squares (>= 32) of 0..255 pixels.

    A ``Rescaling`` layer maps 0..255 to [-1, 1] (what ``mobilenet_v2.preprocess_input``
    does). The head is global average pooling, optional dropout and a Dense layer named
    ``predictions``, as in ``include_top=True``. ``layout``: see the module docstring.
    """
    if image_size < 32:
        raise ValueError(f"mobilenet_v2 needs image_size >= 32, got {image_size}")
    if grayscale:
        raise ValueError("mobilenet_v2 takes colour images; grayscale is for the small networks")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown mobilenet_v2 layout {layout!r}; known: {', '.join(LAYOUTS)}")
    inputs = keras.Input(shape=(image_size, image_size, channels), name="image")
    scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    if layout == "xnnpack":
        features = _xnnpack_base(scaled, alpha)
    else:
        features = keras.applications.MobileNetV2(
            input_tensor=scaled, include_top=False, weights=None, alpha=alpha, pooling=None,
        ).output
    # named, unlike Keras' own pooling layer, so that every build has the same config (the
    # key under which executors keep a compiled model)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    suffix = "_xnnpack" if layout == "xnnpack" else ""
    return keras.Model(inputs, outputs, name=f"mobilenet_v2_{alpha:g}_{image_size}{suffix}")
