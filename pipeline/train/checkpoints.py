"""Checksummed weight files: a checkpoint is trusted only if its bytes match its record.

``save_checkpoint`` writes ``NAME.npz`` and then ``NAME.json`` (size and SHA-256 of the
npz, plus free-form metadata). The record is written last, so a checkpoint without it
was never finished. ``load_checkpoint`` re-hashes the bytes and raises
:class:`CorruptCheckpoint` on any mismatch or unreadable file, so a run never trains from
a truncated or altered file; callers treat that as "recompute this stage".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.store import ArtifactStore, StoreError
from pipeline.weights_npz import weights_from_bytes, weights_to_bytes


class CorruptCheckpoint(ValueError):
    """A checkpoint's bytes do not match its record (or cannot be parsed)."""


def save_checkpoint(
    store: ArtifactStore,
    weights: Sequence[np.ndarray],
    name: str,
    meta: dict[str, Any] | None = None,
    parent: str | None = None,
) -> str:
    """Write ``name.npz`` then its record ``name.json``; returns the npz URL. ``parent``:
    the SHA-256 of the checkpoint this one was trained from (a dense epoch's predecessor)."""
    data = weights_to_bytes(weights)
    url = store.write_bytes(data, f"{name}.npz")
    record = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "arrays": len(weights),
        "meta": meta or {},
    }
    if parent is not None:
        record["parent_sha256"] = parent
    store.write_json(record, f"{name}.json")
    return url


def has_checkpoint(store: ArtifactStore, name: str) -> bool:
    """True when both the npz and its record exist (contents are checked on load)."""
    return store.exists(f"{name}.json") and store.exists(f"{name}.npz")


def checkpoint_meta(store: ArtifactStore, name: str) -> dict[str, Any]:
    return store.read_json(f"{name}.json").get("meta", {})


def load_checkpoint(store: ArtifactStore, name: str) -> list[np.ndarray]:
    """The weight list of checkpoint ``name``, verified against its record."""
    return load_verified(store, name)[0]


def checkpoint_record(store: ArtifactStore, name: str) -> dict[str, Any]:
    """The record of checkpoint ``name`` (SHA-256, size, parent, metadata)."""
    return store.read_json(f"{name}.json")


def load_verified(store: ArtifactStore, name: str) -> tuple[list[np.ndarray], str]:
    """The weight list of checkpoint ``name`` and the SHA-256 of the bytes it came from."""
    url = store.url(f"{name}.npz")
    try:
        record = store.read_json(f"{name}.json")
        data = store.read_bytes(f"{name}.npz")
    except (StoreError, ValueError) as exc:
        raise CorruptCheckpoint(f"checkpoint {url} is missing or unreadable: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != record.get("bytes") or digest != record.get("sha256"):
        raise CorruptCheckpoint(
            f"checkpoint {url} is corrupt: {len(data)} bytes with SHA-256 {digest[:12]}…, "
            f"its record says {record.get('bytes')} bytes, {str(record.get('sha256'))[:12]}…"
        )
    try:
        weights = weights_from_bytes(data)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is bad
        raise CorruptCheckpoint(f"checkpoint {url} cannot be parsed: {exc}") from exc
    if len(weights) != record.get("arrays"):
        raise CorruptCheckpoint(f"checkpoint {url} holds {len(weights)} arrays, not "
                                f"{record.get('arrays')}")
    return weights, digest


def discard_checkpoint(store: ArtifactStore, name: str) -> None:
    """Remove a checkpoint (record first, so a crash in between leaves it 'unfinished')."""
    store.delete(f"{name}.json")
    store.delete(f"{name}.npz")
