"""A masked model as a plain Keras model, saved as a Keras-native ``.keras`` file.

The plain model has Conv2D, DepthwiseConv2D and Dense layers (no masked layers, no
``custom_objects``) and every pruned weight exactly 0.0, so ``keras.saving.load_model``
opens it wherever Keras runs. Exporting a cell of a run is
:func:`pipeline.experiment.export.export_keras`.
"""

from __future__ import annotations

import os
import posixpath
import tempfile

import keras
import numpy as np

from pipeline.models.spec import ModelSpec
from pipeline.store import ArtifactStore, normalize_url
from pipeline.tickets.conversion import iter_layers


class ExportError(ValueError):
    """The cell cannot be exported; the message says why in one line."""


def plain_model(spec: ModelSpec, weights: list[np.ndarray],
                masks: dict[str, np.ndarray]) -> keras.Model:
    """``spec``'s plain model holding ``weights`` (the plain weight list), every entry that
    ``masks`` (by layer name) marks as pruned set to exactly 0.0."""
    model = spec.build()
    expected = [tuple(w.shape) for w in model.weights]
    got = [tuple(np.shape(w)) for w in weights]
    if expected != got:
        raise ExportError(f"the cell's weights ({len(got)} arrays) do not fit {spec.name} "
                          f"with {spec.classes} classes ({len(expected)} arrays)")
    model.set_weights(weights)
    layers = {layer.name: layer for layer in iter_layers(model)}
    for name, mask in masks.items():
        kernel = getattr(layers.get(name), "kernel", None)
        if kernel is None:
            raise ExportError(f"the cell's masks name layer {name!r}, which {spec.name} lacks")
        values = np.asarray(kernel.numpy())
        if values.shape != mask.shape:
            raise ExportError(f"{name}: mask shape {mask.shape} != kernel {values.shape}")
        # np.where, not a product: a negative weight times 0 would leave -0.0
        kernel.assign(np.where(mask, values, np.zeros_like(values)))
    return model


def save_model(model: keras.Model, output: str) -> str:
    """Save ``model`` as ``.keras`` to a local path or any store URL; returns its URL.

    Keras saves to local files only, so the file goes to a temporary directory first and
    is then copied through the artifact store (an atomic write on every scheme).
    """
    if not output.endswith(".keras"):
        raise ExportError(f"output {output} must end in .keras (Keras' native format)")
    parent, base = posixpath.split(normalize_url(output))
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        path = os.path.join(tmp, base)
        model.save(path)
        with open(path, "rb") as fh:
            data = fh.read()
    return ArtifactStore(parent).write_bytes(data, base)
