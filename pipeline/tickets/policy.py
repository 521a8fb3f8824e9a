"""What may be pruned, and how fast: the pruning policy the user sees and changes.

Candidates are the kernels of masked Conv2D ("conv"), DepthwiseConv2D ("depthwise") and
Dense ("dense") layers; biases and BatchNorm parameters are never pruned. Two kernels have
a *role*: the first Conv2D in weight order is ``first_conv``, the last Dense is
``classifier``. Each may get its own per-level fraction (0 keeps it dense). Conv2D kernels
may get theirs too (``conv_fraction``, as Frankle & Carbin prune Conv-4 at 10% against 20%
for its dense layers). When ``first_conv_fraction`` is ``None`` the first conv is pruned
like the other convolutions;
when ``classifier_fraction`` is ``None`` the output layer is pruned at half of
``fraction_per_level``, as Frankle & Carbin (2019) prune it; set it equal to
``fraction_per_level`` to prune it like the others (it then shares the global threshold,
as does any kernel whose own fraction equals ``fraction_per_level``).

``min_layer_density`` (if set) is a floor: no prunable kernel keeps fewer than
``ceil(size * min_layer_density)`` weights, whatever the strategy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import keras

from pipeline.config import from_dict, setting
from pipeline.policy_fields import PolicyFields, policy_fields
from pipeline.tickets.conversion import masked_layers
from pipeline.tickets.masked_layers import LAYER_KIND


@dataclass
class PruningPolicy(PolicyFields):
    """The policy fields (declared in :class:`PolicyFields`) plus layers excluded by name."""

    exclude: list[str] = setting([], "names of layers never pruned")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruningPolicy:
        return from_dict(cls, data)

    @classmethod
    def from_settings(cls, settings: PolicyFields) -> PruningPolicy:
        """Policy from the policy fields of ``settings`` (the job's ``prune`` section)."""
        return cls.from_dict(policy_fields(settings))

    def _role_fraction(self, tensor: KernelInfo) -> float | None:
        """The kernel's role-specific per-level fraction; None when it is pooled."""
        if tensor.role == "first_conv" and self.first_conv_fraction is not None:
            return self.first_conv_fraction
        if tensor.kind == "conv":
            return self.conv_fraction
        if tensor.role == "classifier":
            if self.classifier_fraction is None:
                return self.fraction_per_level / 2  # Frankle & Carbin: the output layer at half
            return self.classifier_fraction
        return None

    def fraction_for(self, tensor: KernelInfo) -> float:
        """Per-level pruning fraction of one kernel (0.0: never pruned)."""
        if tensor.kind not in self.prunable or tensor.name in self.exclude:
            return 0.0
        special = self._role_fraction(tensor)
        return self.fraction_per_level if special is None else special

    def pooled(self, tensor: KernelInfo) -> bool:
        """True when the kernel shares the global threshold: it has no role-specific
        fraction, or one equal to ``fraction_per_level`` (pruned like the others)."""
        special = self._role_fraction(tensor)
        alike = special is None or special == self.fraction_per_level
        return alike and self.fraction_for(tensor) > 0

    def floor_count(self, tensor: KernelInfo) -> int:
        """Fewest weights a prunable kernel keeps under ``min_layer_density`` (0: no floor)."""
        if not self.min_layer_density or not self.is_prunable(tensor):
            return 0
        # the small slack keeps e.g. 100 * 0.07 = 7.000000000000001 from rounding up to 8
        return min(tensor.size, math.ceil(tensor.size * self.min_layer_density - 1e-9))

    def is_prunable(self, tensor: KernelInfo) -> bool:
        return self.fraction_for(tensor) > 0

    def density(self, tensor: KernelInfo, level: float) -> float:
        """Fraction of the kernel's weights left after ``level`` levels: (1 - f) ** level."""
        return (1.0 - self.fraction_for(tensor)) ** level

    def level_for_sparsity(self, sparsity: float) -> float:
        """The (fractional) level at which the pooled kernels reach ``sparsity``."""
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        if self.fraction_per_level <= 0:
            raise ValueError("a policy with fraction_per_level 0 never prunes")
        return math.log1p(-sparsity) / math.log1p(-self.fraction_per_level)


@dataclass(frozen=True)
class KernelInfo:
    """One maskable kernel: its layer name, kind, role and shape."""

    name: str
    kind: str
    role: str | None
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def describe_kernels(model: keras.Model) -> list[KernelInfo]:
    """Every masked kernel of ``model`` in weight order, with kind and role."""
    layers = masked_layers(model)
    kinds = [LAYER_KIND[type(layer)] for layer in layers]
    first_conv = next((i for i, k in enumerate(kinds) if k == "conv"), None)
    classifier = max((i for i, k in enumerate(kinds) if k == "dense"), default=None)
    infos = []
    for i, (layer, kind) in enumerate(zip(layers, kinds, strict=True)):
        role = "first_conv" if i == first_conv else "classifier" if i == classifier else None
        infos.append(KernelInfo(layer.name, kind, role, tuple(layer.kernel.shape)))
    return infos
