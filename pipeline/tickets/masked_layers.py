"""Conv2D, DepthwiseConv2D and Dense whose kernel is multiplied by a 0/1 mask.

The mask is a non-trainable weight of kernel shape (created last, so a layer's weights
are ``[kernel, bias, mask]``). It acts twice:

* in the forward pass the layer computes with ``kernel * mask``, so masked weights get a
  zero gradient and contribute nothing to any output;
* the kernel variable carries a constraint that multiplies it by the mask. Keras applies
  variable constraints right after every optimizer step, so momentum, RMSProp/Adam state
  or weight decay can never leave a non-zero value at a masked position in the *stored*
  kernel: ``get_weights()``, checkpoints and Elephas' weight deltas see exact zeros.

The constraint is attached in ``build`` and is not part of the layer config, so the
layers serialize exactly like their Keras parents plus a registered class name
(package ``lottery_spark``). LoRA and quantization are not supported on masked layers.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

PACKAGE = "lottery_spark"


class MaskConstraint(keras.constraints.Constraint):
    """Multiply a kernel by its layer's mask after applying an optional inner constraint."""

    def __init__(self, mask: keras.Variable, inner: Any = None) -> None:
        self.mask = mask
        self.inner = inner

    def __call__(self, w: Any) -> Any:
        if self.inner is not None:
            w = self.inner(w)
        return ops.multiply(w, ops.cast(self.mask, w.dtype))

    def get_config(self) -> dict[str, Any]:
        # Rebuilt by the layer's ``build``; nothing to serialize.
        return {}


class _MaskedKernelMixin:
    """Shared mask handling; ``kernel`` is the raw kernel variable in all three layers."""

    mask: keras.Variable

    def _add_mask(self) -> None:
        if getattr(self, "lora_rank", None) or getattr(self, "quantization_mode", None):
            raise ValueError(f"{type(self).__name__} does not support LoRA or quantization")
        kernel = self.kernel
        self.mask = self.add_weight(  # type: ignore[attr-defined]
            name="mask",
            shape=kernel.shape,
            initializer="ones",
            trainable=False,
            dtype=kernel.dtype,
        )
        kernel.constraint = MaskConstraint(self.mask, kernel.constraint)

    def masked_kernel(self, kernel: Any) -> Any:
        return ops.multiply(kernel, ops.cast(self.mask, kernel.dtype))

    # Keras' Conv/Dense save only [kernel, bias]; the mask must travel in .keras files too.
    def save_own_variables(self, store: Any) -> None:
        keras.layers.Layer.save_own_variables(self, store)  # type: ignore[arg-type]

    def load_own_variables(self, store: Any) -> None:
        keras.layers.Layer.load_own_variables(self, store)  # type: ignore[arg-type]


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedConv2D(_MaskedKernelMixin, keras.layers.Conv2D):
    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self._add_mask()

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        return super().convolution_op(inputs, self.masked_kernel(kernel))


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedDepthwiseConv2D(_MaskedKernelMixin, keras.layers.DepthwiseConv2D):
    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self._add_mask()

    def call(self, inputs: Any) -> Any:
        outputs = ops.depthwise_conv(
            inputs,
            self.masked_kernel(self.kernel),
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            channel_axis = -1 if self.data_format == "channels_last" else 1
            shape = [1] * len(outputs.shape)
            shape[channel_axis] = -1
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedDense(_MaskedKernelMixin, keras.layers.Dense):
    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self._add_mask()

    def call(self, inputs: Any, training: Any = None) -> Any:
        x = ops.matmul(inputs, self.masked_kernel(self.kernel))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


MASKED_LAYERS: tuple[type[keras.layers.Layer], ...] = (
    MaskedConv2D,
    MaskedDepthwiseConv2D,
    MaskedDense,
)

# Exact Keras classes that have a masked twin (subclasses such as SeparableConv are not).
MASKED_TWIN: dict[type[keras.layers.Layer], type[keras.layers.Layer]] = {
    keras.layers.Conv2D: MaskedConv2D,
    keras.layers.DepthwiseConv2D: MaskedDepthwiseConv2D,
    keras.layers.Dense: MaskedDense,
}
PLAIN_TWIN = {masked: plain for plain, masked in MASKED_TWIN.items()}

# The layer kinds a pruning policy talks about.
LAYER_KIND: dict[type[keras.layers.Layer], str] = {
    MaskedConv2D: "conv",
    MaskedDepthwiseConv2D: "depthwise",
    MaskedDense: "dense",
}


def is_masked(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, MASKED_LAYERS)


def custom_objects() -> dict[str, type]:
    """Everything ``model_from_json`` / ``load_model`` need to rebuild masked models."""
    objects: dict[str, type] = {}
    for cls in MASKED_LAYERS:
        objects[cls.__name__] = cls
        objects[f"{PACKAGE}>{cls.__name__}"] = cls
    return objects
