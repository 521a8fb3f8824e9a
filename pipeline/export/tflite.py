"""TFLite files of a plain Keras model, and running them with the LiteRT runtime.

``to_tflite`` converts with TensorFlow's converter. ``sparse=True`` asks it to store
weights that are mostly zeros in a sparse format (``Optimize.EXPERIMENTAL_SPARSITY``):
the file shrinks with the ticket; whether it also runs faster depends on the runtime's
sparse kernels (XNNPACK has them for 1×1 convolutions on ARM and WebAssembly, not on x86
with AVX). ``quantize="int8"`` quantizes weights and activations to 8 bits, calibrated on
representative batches (inputs and outputs stay float32).

``TFLiteModel`` runs a file in ``ai-edge-litert``, the runtime that replaces
``tf.lite.Interpreter`` (marked for deletion in TensorFlow 2.20).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from typing import Literal

import keras
import numpy as np

Quantize = Literal["int8"]


class TFLiteError(ValueError):
    """The model cannot be converted or run; the message says why in one line."""


def to_tflite(model: keras.Model, sparse: bool = True, quantize: Quantize | None = None,
              representative: Iterable[np.ndarray] | None = None) -> bytes:
    """``model`` as a TFLite flatbuffer. ``representative``: float32 input batches (0..255
    pixels), required with ``quantize="int8"``."""
    import tensorflow as tf

    optimizations = []
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    if quantize == "int8":
        if representative is None:
            raise TFLiteError("int8 quantization needs representative batches")
        batches = [np.asarray(b, "float32") for b in representative]
        if not batches:
            raise TFLiteError("int8 quantization needs representative batches; none were given")
        optimizations.append(tf.lite.Optimize.DEFAULT)
    elif quantize is not None:
        raise TFLiteError(f"unknown quantization {quantize!r} (known: int8)")
    with tempfile.TemporaryDirectory(prefix="tflite-") as tmp:
        # through a SavedModel: the converter's from_keras_model writes one anyway, into a
        # directory it never removes
        path = os.path.join(tmp, "saved")
        model.export(path, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(path)
        converter.optimizations = optimizations
        if quantize == "int8":
            def calibration():  # noqa: ANN202
                for batch in batches:
                    for image in batch:
                        yield [image[None]]

            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            return converter.convert()
        except Exception as exc:  # noqa: BLE001 - the converter raises many kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TFLiteError(f"TFLite conversion failed: {first}") from exc


class TFLiteModel:
    """A TFLite file in the LiteRT interpreter, ``threads`` CPU threads.

    The interpreter hands the graph to XNNPACK, its default CPU delegate. XNNPACK refuses
    some files it cannot run (sparse int8 fully connected layers, for one); those run on the
    runtime's built-in kernels instead, and ``runtime`` says which ran and why.
    """

    def __init__(self, content: bytes, threads: int = 1) -> None:
        self.size = len(content)
        self._content, self._threads = content, threads
        self.runtime = "xnnpack"
        self._open(delegates=True)

    def _open(self, delegates: bool) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (OpResolverType.AUTO if delegates
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self._interpreter = Interpreter(model_content=self._content, num_threads=self._threads,
                                        experimental_op_resolver_type=resolver)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = 0

    def _resize(self, batch: int) -> None:
        if batch == self._batch:
            return
        shape = [batch, *list(self._input["shape"])[1:]]
        self._interpreter.resize_tensor_input(self._input["index"], shape)
        try:
            self._interpreter.allocate_tensors()
        except RuntimeError as exc:
            if self.runtime != "xnnpack" or "elegate" not in str(exc):
                raise
            reason = str(exc).split("Node number")[0].strip()
            self.runtime = f"built-in kernels (XNNPACK refused the file: {reason})"
            self._open(delegates=False)
            self._interpreter.resize_tensor_input(self._input["index"], shape)
            self._interpreter.allocate_tensors()
        self._batch = batch

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The outputs for one batch of float32 images."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._resize(len(x))
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output["index"]))

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        return np.concatenate([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
