"""Weight lists <-> npz bytes, dense or sparse, and through the artifact store.

Dense: ``weights_to_bytes`` / ``weights_from_bytes`` keep order, shapes and dtypes of a
``model.get_weights()`` list exactly. Sparse: for the entries named in ``masks_by_index``
only the values where the mask is 1 are stored (the rest read back as exact zeros).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.store import ArtifactStore


def _key(i: int) -> str:
    return f"w{i:05d}"


def _to_npz(arrays: Mapping[str, np.ndarray], compress: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def weights_to_bytes(weights: Sequence[np.ndarray], compress: bool = False) -> bytes:
    """npz bytes of a weight list (keys ``w00000``, ``w00001``, ...)."""
    return _to_npz({_key(i): np.asarray(w) for i, w in enumerate(weights)}, compress)


def weights_from_bytes(data: bytes) -> list[np.ndarray]:
    """The weight list written by :func:`weights_to_bytes`."""
    arrays = _load_npz(data)
    return [arrays[_key(i)] for i in range(len(arrays))]


def save_weights(
    store: ArtifactStore, weights: Sequence[np.ndarray], *parts: str, compress: bool = False
) -> str:
    """Write a weight list atomically below ``store``; returns its URL."""
    return store.write_bytes(weights_to_bytes(weights, compress), *parts)


def load_weights(store: ArtifactStore, *parts: str) -> list[np.ndarray]:
    return weights_from_bytes(store.read_bytes(*parts))


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
            arrays[_key(i)] = w
    return _to_npz(arrays, compress=True)


def sparse_weights_from_bytes(
    data: bytes, masks_by_index: Mapping[int, np.ndarray]
) -> list[np.ndarray]:
    """Inverse of :func:`sparse_weights_to_bytes` given the same masks."""
    arrays = _load_npz(data)
    out = []
    for i in range(int(arrays["count"])):
        if _key(i) in arrays:
            out.append(arrays[_key(i)])
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
