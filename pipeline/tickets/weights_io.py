"""Sparse weight lists <-> npz bytes: the ticket format.

For the entries named in ``masks_by_index`` only the values where the mask is 1 are stored
(the rest read back as exact zeros); other entries are stored whole, as in the plain format
(:mod:`pipeline.weights_npz`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.weights_npz import arrays_to_npz, npz_to_arrays, weight_key


def sparse_weights_to_bytes(
    weights: Sequence[np.ndarray], masks_by_index: Mapping[int, np.ndarray]
) -> bytes:
    """npz bytes storing only surviving values of the masked entries of ``weights``."""
    arrays: dict[str, np.ndarray] = {"count": np.array(len(weights))}
    for i, w in enumerate(weights):
        w = np.asarray(w)
        if i in masks_by_index:
            mask = np.asarray(masks_by_index[i], dtype=bool)
            if mask.shape != w.shape:
                raise ValueError(f"weight {i}: mask shape {mask.shape} != {w.shape}")
            arrays[f"s{i:05d}"] = w[mask]
            arrays[f"z{i:05d}"] = np.array(w.shape, dtype=np.int64)
        else:
            arrays[weight_key(i)] = w
    return arrays_to_npz(arrays, compress=True)


def sparse_weights_from_bytes(
    data: bytes, masks_by_index: Mapping[int, np.ndarray]
) -> list[np.ndarray]:
    """Inverse of :func:`sparse_weights_to_bytes` given the same masks."""
    arrays = npz_to_arrays(data)
    out = []
    for i in range(int(arrays["count"])):
        if weight_key(i) in arrays:
            out.append(arrays[weight_key(i)])
            continue
        values = arrays[f"s{i:05d}"]
        shape = tuple(int(s) for s in arrays[f"z{i:05d}"])
        mask = np.asarray(masks_by_index[i], dtype=bool)
        if mask.shape != shape or int(mask.sum()) != values.size:
            raise ValueError(f"weight {i}: stored values do not fit the mask")
        dense = np.zeros(shape, dtype=values.dtype)
        dense[mask] = values
        out.append(dense)
    return out
