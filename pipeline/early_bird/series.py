"""Statistics of successive masks: the time series the detectors read.

A mask set is a dict of boolean kernels; it is compared as one vector over all masked
weights (names sorted). The normalised Hamming distance is the fraction of all masked
weights whose bit differs (You et al.'s mask distance); ``changed`` is the fraction of the
kept weights that were not kept before; the nuclear norm of a kernel's mask is that of its
2-D matricisation (every axis but the last against the last), summed over kernels and
divided by the same sum for all-ones masks, so a dense mask scores 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Masks = Mapping[str, np.ndarray]


def flat(masks: Masks) -> np.ndarray:
    """All masked weights' bits as one vector, kernels in name order."""
    return np.concatenate([np.asarray(masks[n], bool).ravel() for n in sorted(masks)])


def hamming(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised Hamming distance of two flat masks."""
    if a.shape != b.shape:
        raise ValueError(f"masks of {a.size} and {b.size} weights: not the same model")
    return float(np.count_nonzero(a != b)) / a.size


def changed(previous: np.ndarray, current: np.ndarray) -> float:
    """Fraction of the weights kept by ``current`` that ``previous`` did not keep."""
    kept = np.count_nonzero(current)
    return float(np.count_nonzero(current & ~previous)) / kept if kept else 0.0


def nuclear_norm(masks: Masks) -> float:
    """Summed nuclear norm of the kernels' matricised masks, relative to all-ones masks."""
    total = reference = 0.0
    for name in sorted(masks):
        mask = np.asarray(masks[name], np.float32)
        matrix = mask.reshape(-1, mask.shape[-1]) if mask.ndim > 1 else mask[None, :]
        total += _nuclear(matrix)
        reference += float(np.sqrt(matrix.shape[0] * matrix.shape[1]))
    return total / reference if reference else 0.0


def _nuclear(matrix: np.ndarray) -> float:
    """Sum of singular values, from the eigenvalues of the smaller Gram matrix (a full SVD of
    a 320×1280 mask costs hundreds of times more)."""
    small = matrix if matrix.shape[0] <= matrix.shape[1] else matrix.T
    gram = (small @ small.T).astype(np.float64)
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None)).sum())


def distance_matrix(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Pairwise normalised Hamming distances of flat masks (You et al.'s Fig. 2)."""
    n = len(masks)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = hamming(masks[i], masks[j])
    return out


def point(previous: Sequence[np.ndarray], current: np.ndarray, masks: Masks,
          window: int) -> dict[str, float | None]:
    """The series' values at a new mask, given the flat masks before it (oldest first)."""
    if not previous:
        return {"distance": None, "window_max_distance": None, "changed": None,
                "nuclear_norm": nuclear_norm(masks)}
    recent = list(previous)[-window:]
    return {"distance": hamming(previous[-1], current),
            "window_max_distance": max(hamming(m, current) for m in recent),
            "changed": changed(previous[-1], current), "nuclear_norm": nuclear_norm(masks)}
