"""Weight lists <-> npz bytes, keeping order, shapes and dtypes of ``model.get_weights()``.

The plain format of every stored weight list (dense checkpoints, optimizer states); the
sparse ticket format builds on :func:`arrays_to_npz` / :func:`npz_to_arrays`
(:mod:`pipeline.tickets.weights_io`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.store import ArtifactStore


def weight_key(i: int) -> str:
    return f"w{i:05d}"


def arrays_to_npz(arrays: Mapping[str, np.ndarray], compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def npz_to_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def weights_to_bytes(weights: Sequence[np.ndarray], compress: bool = False) -> bytes:
    """npz bytes of a weight list (keys ``w00000``, ``w00001``, ...)."""
    return arrays_to_npz({weight_key(i): np.asarray(w) for i, w in enumerate(weights)},
                         compress)


def weights_from_bytes(data: bytes) -> list[np.ndarray]:
    """The weight list written by :func:`weights_to_bytes`."""
    arrays = npz_to_arrays(data)
    return [arrays[weight_key(i)] for i in range(len(arrays))]


def save_weights(
    store: ArtifactStore, weights: Sequence[np.ndarray], *parts: str, compress: bool = False
) -> str:
    """Write a weight list atomically below ``store``; returns its URL."""
    return store.write_bytes(weights_to_bytes(weights, compress), *parts)


def load_weights(store: ArtifactStore, *parts: str) -> list[np.ndarray]:
    return weights_from_bytes(store.read_bytes(*parts))
