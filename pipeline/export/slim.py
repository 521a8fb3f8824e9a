"""Physically slimmer networks: the channels a ticket leaves without effect, removed.

A channel can go when nothing downstream can tell it is gone. Channel ``j`` of a channel
space (:mod:`pipeline.models.channel_spaces`: the layers that share their channels, such
as an inverted-residual block's expansion, depthwise convolution and BatchNorms) is
removed from every layer in it when every layer that reads the space from outside (a
convolution, or a Dense layer, directly or through Flatten) either

* has all-zero weights on ``j`` (it ignores the channel), or
* sees ``j`` as a constant ``c`` whatever the image: a kernel slice of all zeros makes its
  output the bias, and BatchNorm and activations map a constant to a constant. The
  reader's response to ``c`` is folded into its bias, or into the moving mean of the
  BatchNorm that follows it. Convolutions larger than 1×1 pad with zeros, so a non-zero
  constant is exact to fold only through 1×1 readers; through a 3×3 one the channel stays.

Frozen spaces (the model's input and output, and spaces next to a layer the graph does not
know) are never touched. The result is a plain Keras model with the same layer names whose
logits equal the masked model's up to float rounding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import keras
import numpy as np

from pipeline.models.channel_spaces import ChannelGraph, ChannelGraphError
from pipeline.tickets.conversion import iter_layers
from pipeline.tickets.flops import count_flops
from pipeline.tickets.masked_layers import is_masked


class SlimError(ValueError):
    """The model cannot be slimmed; the message says why in one line."""


@dataclass(frozen=True)
class SpaceChange:
    layers: tuple[str, ...]  # the layers whose output channels the space holds
    before: int
    after: int


@dataclass
class SlimResult:
    model: keras.Model
    spaces: list[SpaceChange] = field(default_factory=list)  # the spaces that lost channels
    channels_before: int = 0  # over every space that could lose channels
    parameters_before: int = 0
    parameters_after: int = 0
    flops_before: int = 0  # multiply-adds per image of the non-zero weights
    flops_after: int = 0

    @property
    def channels_removed(self) -> int:
        return sum(s.before - s.after for s in self.spaces)

    @property
    def changed(self) -> bool:
        return bool(self.spaces)

    def summary(self) -> str:
        if not self.changed:
            return (f"no channel could be removed ({self.channels_before} channels checked): "
                    f"the slim model has the same architecture")
        return (f"removed {self.channels_removed} of {self.channels_before} channels in "
                f"{len(self.spaces)} channel spaces; parameters {self.parameters_before:,} → "
                f"{self.parameters_after:,} "
                f"({100 * self.parameters_after / max(self.parameters_before, 1):.1f}%); "
                f"multiply-adds per image {self.flops_before:,} → {self.flops_after:,}")


def _kernel(layer: keras.layers.Layer) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(layer.kernel))


def _bias(layer: keras.layers.Layer, size: int) -> np.ndarray:
    bias = getattr(layer, "bias", None)
    return np.zeros(size) if bias is None else np.asarray(keras.ops.convert_to_numpy(bias),
                                                         "float64")


def _apply(layer: keras.layers.Layer, values: np.ndarray) -> np.ndarray:
    """``layer`` (elementwise) applied to one constant per channel; NaN stays NaN."""
    known = ~np.isnan(values)
    if not known.any():
        return values
    x = np.where(known, values, 0.0).astype("float32")
    shape = [1] * (len(layer.input.shape) - 1) + [values.size]
    if isinstance(layer, keras.layers.BatchNormalization):
        y = layer(x.reshape(shape), training=False)
    else:
        y = layer(x.reshape(shape))
    y = np.asarray(keras.ops.convert_to_numpy(y), "float64").reshape(-1)
    return np.where(known, y, np.nan)


def _activation(layer: keras.layers.Layer, values: np.ndarray) -> np.ndarray:
    x = keras.ops.convert_to_tensor(values.astype("float32")[None])
    return np.asarray(keras.ops.convert_to_numpy(layer.activation(x)), "float64")[0]


def _constants(graph: ChannelGraph) -> dict[str, np.ndarray]:
    """Per layer output: each channel's value when it is the same for every image and every
    position, NaN otherwise."""
    const: dict[str, np.ndarray] = {}
    for name in graph.order:
        layer, kind = graph.layers[name], graph.kind(name)
        inbound = [const[s] for s in graph.inputs[name]]
        if kind in ("Conv2D", "Dense", "DepthwiseConv2D"):
            kernel = _kernel(layer)
            if kind == "DepthwiseConv2D":
                zero = ~kernel.any(axis=(0, 1, 3)) | (inbound[0] == 0)
            else:
                zero = ~kernel.reshape(-1, kernel.shape[-1]).any(axis=0)
            value = _activation(layer, _bias(layer, zero.size))
            const[name] = np.where(zero, value, np.nan)
        elif kind in ("BatchNormalization", "ReLU", "Activation", "Rescaling"):
            const[name] = _apply(layer, inbound[0])
        elif kind in ("Dropout", "GlobalAveragePooling2D", "MaxPooling2D"):
            const[name] = inbound[0]
        elif kind == "ZeroPadding2D":
            const[name] = np.where(inbound[0] == 0, 0.0, np.nan)
        elif kind == "Add":
            const[name] = np.sum(inbound, axis=0)
        else:  # the input, Flatten and unknown layers: nothing is known
            const[name] = np.full(int(layer.output.shape[-1]), np.nan)
    return const


def _reader_rows(graph: ChannelGraph, reader: str) -> tuple[np.ndarray, int]:
    """A Conv2D or Dense reader's kernel as [input channel, taps, out], and its taps."""
    kernel = _kernel(graph.layers[reader])
    if graph.kind(reader) == "Dense":
        return kernel[:, None, :], 1
    taps = kernel.shape[0] * kernel.shape[1]
    return np.moveaxis(kernel.reshape(taps, kernel.shape[2], -1), 1, 0), taps


def _flatten_rows(graph: ChannelGraph, source: str, dense: str) -> np.ndarray:
    """A Dense kernel behind Flatten as [channel of ``source``, position, out]."""
    channels = graph.layers[source].output.shape[-1]
    kernel = _kernel(graph.layers[dense])
    return np.moveaxis(kernel.reshape(-1, channels, kernel.shape[-1]), 1, 0)


def slim_model(model: keras.Model) -> SlimResult:
    """``model`` (plain layers, pruned weights exactly 0.0) without the channels that have
    no effect on its outputs; see the module docstring for the rule."""
    if any(is_masked(layer) for layer in iter_layers(model)):
        raise SlimError("slim the plain model (pipeline.tickets.to_plain), not the masked one")
    try:
        graph = ChannelGraph(model)
    except ChannelGraphError as exc:
        raise SlimError(str(exc)) from exc
    const = _constants(graph)
    keep: dict[str, np.ndarray] = {}  # space root -> kept channel indices
    folds: dict[str, np.ndarray] = {}  # reader -> what removed channels added to its output
    changes: list[SpaceChange] = []
    checked = 0
    for root, space in graph.spaces.items():
        keep[root] = np.arange(space.channels)
        if space.frozen:
            continue
        checked += space.channels
        removable = np.ones(space.channels, bool)
        edges = []  # (source, kernel holder, rows [C, taps, out], taps)
        for source, reader in space.edges:
            if graph.kind(reader) == "Flatten":
                edges += [(source, dense, _flatten_rows(graph, source, dense), 1)
                          for dense in graph.readers[reader]]
            else:
                edges.append((source, reader, *_reader_rows(graph, reader)))
        for source, _, rows, taps in edges:
            c = const[source]
            ignored = ~rows.reshape(rows.shape[0], -1).any(axis=1)
            constant = ~np.isnan(c) & ((c == 0) | (taps == 1))
            removable &= ignored | constant
        if removable.all():
            removable[0] = False  # a space keeps one channel, whatever it holds
        if not removable.any():
            continue
        keep[root] = np.flatnonzero(~removable)
        changes.append(SpaceChange(tuple(space.members), space.channels, int(keep[root].size)))
        for source, holder, rows, _ in edges:
            c = np.nan_to_num(const[source])[removable]
            fold = np.einsum("c,cto->o", c, rows[removable].astype("float64"))
            folds[holder] = folds.get(holder, 0.0) + fold
    slim = _rebuild(graph, keep, folds)
    before, after = count_flops(model), count_flops(slim)
    return SlimResult(slim, changes, checked, model.count_params(), slim.count_params(),
                      before.flops_remaining, after.flops_remaining)


def _rebuild(graph: ChannelGraph, keep: dict[str, np.ndarray],
             folds: dict[str, np.ndarray]) -> keras.Model:
    config = copy.deepcopy(graph.config)
    fold_into_bias: set[str] = set()
    mean_shift: dict[str, np.ndarray] = {}
    for holder, fold in folds.items():
        if not np.any(fold):
            continue
        layer = graph.layers[holder]
        readers = graph.readers[holder]
        if getattr(layer, "bias", None) is not None:
            fold_into_bias.add(holder)
        elif len(readers) == 1 and graph.kind(readers[0]) == "BatchNormalization":
            mean_shift[readers[0]] = mean_shift.get(readers[0], 0.0) + fold
        else:
            fold_into_bias.add(holder)
    for entry in config["layers"]:
        name, cfg = entry["name"], entry["config"]
        entry.pop("build_config", None)
        kept = keep[graph.space_of(name)].size
        if entry["class_name"] == "Conv2D":
            cfg["filters"] = int(kept)
        elif entry["class_name"] == "Dense":
            cfg["units"] = int(kept)
        if name in fold_into_bias:
            cfg["use_bias"] = True
    slim = keras.Model.from_config(config)
    for name in graph.order:
        old, new = graph.layers[name], slim.get_layer(name)
        if not old.weights:
            continue
        out = keep[graph.space_of(name)]
        kind = graph.kind(name)
        sources = graph.inputs[name]
        if kind == "Conv2D" or kind == "Dense":
            kernel = _kernel(old)
            source = sources[0]
            if graph.kind(source) == "Flatten":
                inner = graph.inputs[source][0]
                channels = graph.layers[inner].output.shape[-1]
                rows = kernel.reshape(-1, channels, kernel.shape[-1])
                rows = rows[:, keep[graph.space_of(inner)]]
                kernel = rows.reshape(-1, kernel.shape[-1])
            elif kind == "Dense":
                kernel = kernel[keep[graph.space_of(source)]]
            else:
                kernel = kernel[:, :, keep[graph.space_of(source)]]
            weights = [kernel[..., out]]
            if new.use_bias:
                bias = _bias(old, kernel.shape[-1]) + folds.get(name, 0.0)
                weights.append(bias[out].astype(kernel.dtype))
        elif kind == "DepthwiseConv2D":
            weights = [_kernel(old)[:, :, out]]
            if new.use_bias:
                weights.append(_bias(old, out.size)[out] if old.use_bias else
                               np.zeros(out.size, "float32"))
        elif kind == "BatchNormalization":
            values = {id(v): np.asarray(keras.ops.convert_to_numpy(v)) for v in old.weights}
            weights = []
            for variable in old.weights:
                value = values[id(variable)]
                if variable is old.moving_mean and name in mean_shift:
                    value = (value - mean_shift[name]).astype(value.dtype)
                weights.append(value[out])
        else:
            weights = old.get_weights()
        new.set_weights(weights)
    return slim
