"""Tickets in the artifact store: mask + rewind weights + the settings that made them.

A ticket is a directory below an :class:`~pipeline.store.ArtifactStore` (any URL scheme):

* ``masks.npz``: every mask bit-packed with ``np.packbits`` (1 bit per weight);
* ``weights.npz``: the rewind weights in the plain model's order; for masked kernels only
  the surviving values are stored, everything else (biases, BatchNorm incl. moving
  statistics) densely;
* ``sparsity.csv``: the per-tensor sparsity table;
* ``ticket.json``: format version, pruning policy, settings, kernel positions and the
  sparsity summary. It is written last, so a ticket without it is incomplete.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from pipeline.store import ArtifactStore
from pipeline.tickets.conversion import full_weights, kernel_positions, plain_weights
from pipeline.tickets.masks import Masks, get_masks
from pipeline.tickets.policy import PruningPolicy
from pipeline.tickets.rewind import rewind
from pipeline.tickets.sparsity import sparsity_report
from pipeline.tickets.weights_io import sparse_weights_from_bytes, sparse_weights_to_bytes

FORMAT_VERSION = 1
FILES = ("masks.npz", "weights.npz", "sparsity.csv", "ticket.json")


@dataclass
class Ticket:
    masks: Masks  # layer name -> bool array
    weights: list[np.ndarray]  # rewind weights, plain-model order, pruned entries 0.0
    policy: PruningPolicy
    settings: dict[str, Any] = field(default_factory=dict)
    kernel_index: dict[str, int] = field(default_factory=dict)  # layer -> index in weights
    summary: dict[str, float] = field(default_factory=dict)
    sparsity_csv: str = ""


def masks_to_bytes(masks: Mapping[str, np.ndarray]) -> bytes:
    """Bit-packed npz of a masks dict (names, shapes and packed bits)."""
    names = sorted(masks)
    arrays: dict[str, np.ndarray] = {"names": np.array(names, dtype=str)}
    for i, name in enumerate(names):
        mask = np.asarray(masks[name], dtype=bool)
        arrays[f"bits{i:05d}"] = np.packbits(mask.ravel())
        arrays[f"shape{i:05d}"] = np.array(mask.shape, dtype=np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def masks_from_bytes(data: bytes) -> Masks:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        names = [str(n) for n in npz["names"]]
        masks = {}
        for i, name in enumerate(names):
            shape = tuple(int(s) for s in npz[f"shape{i:05d}"])
            size = int(np.prod(shape))
            bits = np.unpackbits(npz[f"bits{i:05d}"], count=size)
            masks[name] = bits.astype(bool).reshape(shape)
    return masks


def make_ticket(
    model: keras.Model,
    policy: PruningPolicy,
    masks: Mapping[str, np.ndarray] | None = None,
    rewind_weights: Sequence[np.ndarray] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Ticket:
    """Ticket from a masked model: ``masks`` (default: the model's) on ``rewind_weights``.

    ``rewind_weights`` (default: the model's current weights) may be a plain or masked
    weight list, e.g. the epoch-k checkpoint of dense training. ``settings`` should say
    how the ticket was made (model name and arguments, level, rewind epoch, seed...).
    """
    masks = get_masks(model) if masks is None else masks
    masks = {name: np.asarray(mask, dtype=bool) for name, mask in masks.items()}
    source = model.get_weights() if rewind_weights is None else rewind_weights
    weights = plain_weights(model, full_weights(model, source, masks))
    report = sparsity_report(model, policy, masks)
    return Ticket(
        masks=masks,
        weights=weights,
        policy=policy,
        settings=dict(settings or {}),
        kernel_index=kernel_positions(model),
        summary=report.summary(),
        sparsity_csv=report.to_csv(),
    )


def apply_ticket(model: keras.Model, ticket: Ticket) -> None:
    """Load the ticket into a masked model of the same architecture (masks + rewind)."""
    rewind(model, ticket.weights, ticket.masks)


def ticket_files(ticket: Ticket) -> dict[str, bytes]:
    """The ticket's files as bytes, in writing order (``ticket.json`` last)."""
    by_index = {i: ticket.masks[name] for name, i in ticket.kernel_index.items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "policy": ticket.policy.to_dict(),
        "settings": ticket.settings,
        "kernel_index": ticket.kernel_index,
        "summary": ticket.summary,
    }
    return {
        "masks.npz": masks_to_bytes(ticket.masks),
        "weights.npz": sparse_weights_to_bytes(ticket.weights, by_index),
        "sparsity.csv": ticket.sparsity_csv.encode("utf-8"),
        "ticket.json": json.dumps(meta, indent=2, sort_keys=True, default=str).encode("utf-8"),
    }


def save_ticket(store: ArtifactStore, ticket: Ticket, *parts: str) -> str:
    """Write the ticket under ``parts`` of ``store``; returns the directory URL."""
    for name, data in ticket_files(ticket).items():
        store.write_bytes(data, *parts, name)
    return store.url(*parts)


def ticket_exists(store: ArtifactStore, *parts: str) -> bool:
    return store.exists(*parts, "ticket.json")


def load_ticket(store: ArtifactStore, *parts: str) -> Ticket:
    meta = json.loads(store.read_bytes(*parts, "ticket.json"))
    if meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version")
        raise ValueError(f"{store.url(*parts)}: unsupported ticket format {version}")
    masks = masks_from_bytes(store.read_bytes(*parts, "masks.npz"))
    kernel_index = {str(k): int(v) for k, v in meta["kernel_index"].items()}
    by_index = {i: masks[name] for name, i in kernel_index.items()}
    weights = sparse_weights_from_bytes(store.read_bytes(*parts, "weights.npz"), by_index)
    return Ticket(
        masks=masks,
        weights=weights,
        policy=PruningPolicy.from_dict(meta["policy"]),
        settings=meta["settings"],
        kernel_index=kernel_index,
        summary=meta["summary"],
        sparsity_csv=store.read_text(*parts, "sparsity.csv"),
    )
