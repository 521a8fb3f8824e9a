"""Channel spaces of a functional model: which layers' channels are one and the same.

A convolution or Dense layer starts a space with its output channels. The layers that act
channel by channel (BatchNormalization, ReLU, DepthwiseConv2D with one multiplier,
ZeroPadding2D, Add, pooling, Dropout, elementwise activations) keep their input's space, so
in MobileNetV2 an inverted-residual block's expansion, depthwise convolution and their
BatchNorms share one space, and a chain of residual adds with every projection feeding it
another. Channel ``j`` of a space is one feature wherever it appears: pruning it (the
structured pruning of ``prune.granularity: channels``) or removing it (slimming) acts on
every layer of the space at once.

A space is *frozen* when it holds the model's input or output, or touches a layer this
module does not know (nothing may change its width).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

ELEMENTWISE_ACTIVATIONS = {"relu", "relu6", "linear", "sigmoid", "tanh", "swish", "silu",
                           "gelu", "elu", "selu", "softplus", "hard_sigmoid", "hard_swish"}
CHANNELWISE = {"BatchNormalization", "ReLU", "Activation", "Rescaling", "Dropout",
               "ZeroPadding2D", "Add", "GlobalAveragePooling2D", "MaxPooling2D",
               "DepthwiseConv2D"}
# isinstance order: a masked layer is its plain parent's kind
_KINDS = (
    (keras.layers.InputLayer, "InputLayer"), (keras.layers.DepthwiseConv2D, "DepthwiseConv2D"),
    (keras.layers.Conv2D, "Conv2D"), (keras.layers.Dense, "Dense"),
    (keras.layers.BatchNormalization, "BatchNormalization"), (keras.layers.ReLU, "ReLU"),
    (keras.layers.Activation, "Activation"), (keras.layers.Rescaling, "Rescaling"),
    (keras.layers.Dropout, "Dropout"), (keras.layers.ZeroPadding2D, "ZeroPadding2D"),
    (keras.layers.Add, "Add"), (keras.layers.GlobalAveragePooling2D, "GlobalAveragePooling2D"),
    (keras.layers.MaxPooling2D, "MaxPooling2D"), (keras.layers.Flatten, "Flatten"),
)


class ChannelGraphError(ValueError):
    """The model's graph cannot be read; the message says why in one line."""


@dataclass
class ChannelSpace:
    root: str
    members: list[str]  # layers whose outputs carry the space's channels, in model order
    channels: int
    frozen: bool
    producers: list[str] = field(default_factory=list)  # Conv2D/Dense members
    depthwise: list[str] = field(default_factory=list)  # DepthwiseConv2D members
    edges: list[tuple[str, str]] = field(default_factory=list)  # (member, reader outside)


def _history(value: Any) -> Iterator[str]:
    """Layer names of the Keras tensors in an ``inbound_nodes`` entry, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield value["config"]["keras_history"][0]
            return
        for item in value.values():
            yield from _history(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _history(item)


class ChannelGraph:
    """A functional model's layers in topological order, each called once, and its spaces."""

    def __init__(self, model: keras.Model) -> None:
        config = model.get_config()
        if "layers" not in config or "output_layers" not in config:
            raise ChannelGraphError(f"{model.name} is not a functional model")
        self.config = config
        self.layers = {layer.name: layer for layer in model.layers}
        self.order = [entry["name"] for entry in config["layers"]]
        entries = {entry["name"]: entry for entry in config["layers"]}
        for name in self.order:
            if len(entries[name].get("inbound_nodes", [])) > 1:
                raise ChannelGraphError(f"layer {name} is called more than once")
            if isinstance(self.layers[name], keras.Model):
                raise ChannelGraphError(f"layer {name} is a nested model")
        self.inputs = {name: list(_history(entries[name].get("inbound_nodes", [])))
                       for name in self.order}
        self.readers: dict[str, list[str]] = {name: [] for name in self.order}
        for name, inbound in self.inputs.items():
            for source in inbound:
                self.readers[source].append(name)
        outputs = config["output_layers"]
        outputs = [outputs] if outputs and isinstance(outputs[0], str) else outputs
        self.outputs = [o[0] for o in outputs]
        self._parent = {name: name for name in self.order}
        for name in self.order:
            if self.kind(name) in CHANNELWISE:
                for source in self.inputs[name]:
                    self._parent[self.space_of(source)] = self.space_of(name)
        self.spaces = self._spaces()

    def kind(self, name: str) -> str:
        layer = self.layers[name]
        kind = next((k for cls, k in _KINDS if isinstance(layer, cls)), "unknown")
        if kind == "Activation" and getattr(layer.activation, "__name__", "") not in (
                ELEMENTWISE_ACTIVATIONS):
            return "unknown"
        if kind == "DepthwiseConv2D" and layer.depth_multiplier != 1:
            return "unknown"
        if kind == "Conv2D" and layer.groups != 1:
            return "unknown"
        if kind == "Rescaling" and np.ndim(layer.scale) + np.ndim(layer.offset) > 0:
            return "unknown"
        return kind

    def space_of(self, name: str) -> str:
        """The root name of the space ``name``'s output channels belong to."""
        while self._parent[name] != name:
            self._parent[name] = self._parent[self._parent[name]]
            name = self._parent[name]
        return name

    def _spaces(self) -> dict[str, ChannelSpace]:
        frozen: set[str] = set(self.outputs)
        for name in self.order:
            kind = self.kind(name)
            if kind in ("unknown", "InputLayer"):
                frozen.add(name)
                frozen.update(self.inputs[name])
            if kind == "Flatten":
                frozen.add(name)
                if any(self.kind(r) != "Dense" for r in self.readers[name]):
                    frozen.update(self.inputs[name])
        frozen_roots = {self.space_of(n) for n in frozen}
        spaces: dict[str, ChannelSpace] = {}
        for name in self.order:
            root = self.space_of(name)
            if root not in spaces:
                spaces[root] = ChannelSpace(root, [], int(self.layers[name].output.shape[-1]),
                                            root in frozen_roots)
            space = spaces[root]
            space.members.append(name)
            kind = self.kind(name)
            if kind in ("Conv2D", "Dense"):
                space.producers.append(name)
            elif kind == "DepthwiseConv2D":
                space.depthwise.append(name)
            space.edges += [(name, r) for r in self.readers[name] if self.space_of(r) != root]
        return spaces
