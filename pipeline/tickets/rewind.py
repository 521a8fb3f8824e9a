"""Rewinding: put a masked model back to a stored checkpoint while keeping its mask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

from pipeline.tickets.conversion import full_weights
from pipeline.tickets.masks import get_masks


def rewind(
    model: keras.Model,
    checkpoint: Sequence[np.ndarray],
    masks: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Set every weight to its checkpoint value (epoch k; k = 0 is the init), then mask.

    ``checkpoint`` is a weight list of the masked model or of its plain twin (what dense
    training saved). Masks in it are ignored: the model keeps ``masks`` (default: its
    current ones). Pruned kernel entries become exactly 0; BatchNorm moving statistics,
    biases and everything else take the checkpoint's values.
    """
    masks = get_masks(model) if masks is None else masks
    model.set_weights(full_weights(model, checkpoint, masks))
