"""The pruning-policy fields, declared once.

:class:`pipeline.tickets.PruningPolicy` (stored with every ticket) and the main job's
``prune.*`` settings (:class:`pipeline.experiment.settings.PruneSettings`) both extend
:class:`PolicyFields`. It lives outside ``pipeline.tickets`` because importing that package
loads Keras, and the job's settings, ``--help`` included, load without it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.config import check_choices, require, setting

KINDS = ("conv", "depthwise", "dense")


@dataclass
class PolicyFields:
    strategy: Literal["global", "layerwise"] = setting(
        "global", "global: one magnitude threshold over all pooled kernels; layerwise: the "
        "same fraction of every kernel"
    )
    fraction_per_level: float = setting(
        0.2, "fraction f of the remaining prunable weights removed per level"
    )
    prunable: list[str] = setting(list(KINDS), "layer kinds that may be pruned")
    conv_fraction: float | None = setting(
        None, "per-level fraction for Conv2D kernels (null: fraction_per_level; Frankle & "
        "Carbin prune their Conv-2/4/6 convolutions at half the rate of the dense layers)"
    )
    first_conv_fraction: float | None = setting(
        None, "per-level fraction for the first Conv2D (null: like the other convolutions, "
        "0: never)"
    )
    classifier_fraction: float | None = setting(
        None, "per-level fraction for the output Dense (null: half of fraction_per_level, as "
        "in Frankle & Carbin; equal to fraction_per_level: like the others; 0: never)"
    )
    min_layer_density: float | None = setting(
        None, "floor on the fraction of weights every prunable kernel keeps (its largest "
        "magnitudes), so that no layer is emptied (null: no floor)"
    )
    keep_depthwise_channels: bool = setting(
        False, "keep the largest weight of every depthwise channel, so that no channel is emptied"
    )
    granularity: Literal["weights", "channels"] = setting(
        "weights", "weights: prune single weights by magnitude; channels: prune whole channels "
        "(every filter and depthwise slice of a channel) by their kernels' L1 norm, at each "
        "layer's rate (needs strategy layerwise), so that an export can remove them (--slim)"
    )

    def __post_init__(self) -> None:
        check_choices(self)
        for kind in self.prunable:
            require(kind in KINDS, "prunable",
                    f"unknown layer kind {kind!r}; kinds: {', '.join(KINDS)}")
        if self.granularity == "channels":
            require(self.strategy == "layerwise", "granularity",
                    "channels are ranked within each layer: set strategy to layerwise")
            require(not self.keep_depthwise_channels, "granularity",
                    "keep_depthwise_channels is for weight pruning; channels are pruned whole")
        for name in ("fraction_per_level", "conv_fraction", "first_conv_fraction",
                     "classifier_fraction", "min_layer_density"):
            value = getattr(self, name)
            require(value is None or 0.0 <= value < 1.0, name, f"must be in [0, 1), got {value}")


def policy_fields(source: Any) -> dict[str, Any]:
    """The :class:`PolicyFields` values of ``source`` (a PruneSettings, say), by name."""
    return {f.name: getattr(source, f.name) for f in dataclasses.fields(PolicyFields)}
