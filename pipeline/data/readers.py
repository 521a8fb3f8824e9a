"""Function forms of :mod:`pipeline.data.dataset`, for callers that hold a URL.

The format and the input path live in :class:`~pipeline.data.dataset.IngestedDataset` and
:class:`~pipeline.data.dataset.DatasetSplit`; these wrappers only name them the way the
jobs and tests have always called them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.data.dataset import (
    DatasetError,
    DatasetSplit,
    IngestedDataset,
    check_reader_filesystem,
)

__all__ = [
    "DatasetError",
    "check_reader_filesystem",
    "dataset_info",
    "load_numpy",
    "make_tf_dataset",
    "read_classes",
    "split_url",
    "validate_dataset",
]


def read_classes(url: str) -> list[str]:
    """The synsets of an ingest output, in label order."""
    return IngestedDataset(url).classes


def dataset_info(url: str) -> dict[str, Any]:
    """The contents of ``dataset.json`` (image_size, num_classes, rows, rejected, layout ...)."""
    return IngestedDataset(url).info


def validate_dataset(url: str) -> dict[str, Any]:
    """Raise DatasetError unless ``url`` is a complete ingest output; returns its info."""
    return IngestedDataset(url).validate()


def split_url(url: str, split: str) -> str:
    """URL of one split (``train`` or ``val``) of an ingest output."""
    return IngestedDataset(url).split(split).url


def load_numpy(
    split_url: str,
    limit: int | None = None,
    cur_shard: int | None = None,
    shard_count: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All (or the first ``limit``) rows of a split as ``x`` uint8 [n,N,N,3] and ``y`` int32 [n],
    in stored order (see :meth:`DatasetSplit.load`)."""
    return DatasetSplit.of(split_url).load(limit, cur_shard, shard_count)


def make_tf_dataset(
    split_url: str,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    num_epochs: int | None = 1,
    cur_shard: int | None = None,
    shard_count: int | None = None,
    workers_count: int | None = None,
    shuffle_buffer: int = 1024,
    drop_remainder: bool = False,
    flip: bool = False,
    image_size: int | None = None,
) -> Any:
    """A ``tf.data.Dataset`` of ``(uint8 images [b,S,S,3], int32 labels [b])``; see
    :meth:`DatasetSplit.batches` (``workers_count`` is its ``parallel``: decode calls in
    flight, which never change the order)."""
    return DatasetSplit.of(split_url).batches(
        batch_size, shuffle=shuffle, seed=seed, num_epochs=num_epochs, cur_shard=cur_shard,
        shard_count=shard_count, parallel=workers_count, shuffle_buffer=shuffle_buffer,
        drop_remainder=drop_remainder, flip=flip, image_size=image_size,
    )
