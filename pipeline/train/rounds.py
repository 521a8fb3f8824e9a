"""Bounded training rounds over a Petastorm split: planned on the driver, read on executors.

Elephas turns a whole partition into one numpy array, so executor memory grows with the
partition. Here an epoch is cut into *rounds*: the driver lists the split's Parquet row
groups (footers only), shuffles them per epoch, cuts them into chunks and packs the chunks
into per-task shares of at most ``images_per_task`` images; each round gives one share to
every worker. A task reads only its own row-group slices straight from the store and
decodes them, so neither the driver nor any executor ever holds more than one round's
share: ``images_per_task × N × N × 3`` bytes of uint8 pixels (2,048 images at 224×224 is
about 300 MB).
"""

from __future__ import annotations

import posixpath
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.store import ArtifactStore


@dataclass(frozen=True)
class RowSlice:
    """Rows ``[start, start + count)`` of one row group of one Parquet file."""

    file: str  # path relative to the split's root
    row_group: int
    start: int
    count: int


@dataclass(frozen=True)
class Share:
    """What one task trains on in one round."""

    split_url: str
    slices: tuple[RowSlice, ...]

    @property
    def images(self) -> int:
        return sum(s.count for s in self.slices)


def list_row_groups(split_url: str) -> list[RowSlice]:
    """Every row group of a split, as whole-group slices, in file order (footers only)."""
    store = ArtifactStore(split_url)
    infos = store.fs.get_file_info(pafs.FileSelector(store.path(), recursive=True))
    files = sorted(
        i.path for i in infos
        if i.type == pafs.FileType.File and i.path.endswith(".parquet")
        and not posixpath.basename(i.path).startswith((".", "_"))
    )
    root = store.path().rstrip("/") + "/"
    groups = []
    for path in files:
        with store.fs.open_input_file(path) as fh:
            meta = pq.ParquetFile(fh).metadata
        rel = path[len(root):]
        for index in range(meta.num_row_groups):
            rows = meta.row_group(index).num_rows
            if rows:
                groups.append(RowSlice(rel, index, 0, rows))
    return groups


def plan_epoch(
    groups: list[RowSlice], workers: int, images_per_task: int, seed: int
) -> list[list[RowSlice]]:
    """Per-task shares of one epoch, in round order: ``shares[r * workers + w]``.

    Row groups are shuffled with ``seed``, cut into chunks of at most ``images_per_task``
    rows, and dealt out so every task of a round gets about the same number of images.
    """
    if workers < 1 or images_per_task < 1:
        raise ValueError("workers and images_per_task must be at least 1")
    order = list(groups)
    random.Random(seed).shuffle(order)
    total = sum(g.count for g in order)
    if total == 0:
        return []
    rounds = -(-total // (workers * images_per_task))
    tasks = rounds * workers
    per_task = -(-total // tasks)
    shares: list[list[RowSlice]] = [[] for _ in range(tasks)]
    task, filled = 0, 0
    for group in order:
        start = group.start
        left = group.count
        while left:
            take = min(left, per_task - filled)
            shares[task].append(RowSlice(group.file, group.row_group, start, take))
            start += take
            left -= take
            filled += take
            if filled == per_task and task < tasks - 1:
                task, filled = task + 1, 0
    return [s for s in shares if s]


def epoch_rounds(
    split_url: str, groups: list[RowSlice], workers: int, images_per_task: int, seed: int
) -> list[list[Share]]:
    """The epoch's rounds: each a list of at most ``workers`` shares."""
    shares = [Share(split_url, tuple(s)) for s in plan_epoch(groups, workers, images_per_task,
                                                             seed)]
    return [shares[i : i + workers] for i in range(0, len(shares), workers)]


def _decode_image(value: bytes) -> np.ndarray:
    """The stored JPEG as RGB uint8, exactly as petastorm's image codec decodes it."""
    from petastorm.codecs import CompressedImageCodec

    return CompressedImageCodec("jpeg").decode(None, value)


def read_share(
    share: Share, image_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Executor side: decode one share to ``x`` uint8 ``[n, N, N, 3]`` and ``y`` int32 ``[n]``.

    With ``image_size`` smaller than the stored side, images are resized (area averaging).
    """
    import cv2

    store = ArtifactStore(share.split_url)
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for piece in share.slices:
        with store.fs.open_input_file(store.path(piece.file)) as fh:
            table = pq.ParquetFile(fh).read_row_group(piece.row_group, columns=["image", "label"])
        table = table.slice(piece.start, piece.count)
        for value in table.column("image").to_pylist():
            image = _decode_image(value)
            if image_size and image.shape[0] != image_size:
                image = cv2.resize(image, (image_size, image_size), interpolation=cv2.INTER_AREA)
            images.append(image)
        labels.append(table.column("label").to_numpy().astype(np.int32))
    if not images:
        return np.zeros((0, 0, 0, 3), np.uint8), np.zeros((0,), np.int32)
    return np.stack(images), np.concatenate(labels)


def share_records(
    shares: Iterator[Share],
    num_classes: int,
    image_size: int | None,
    flip_seed: int | None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``mapPartitions`` body: ``(image uint8, one-hot float32)`` records of the shares.

    With ``flip_seed``, half of the images are mirrored left-right (training augmentation).
    """
    for share in shares:
        x, y = read_share(share, image_size)
        if flip_seed is not None and len(x):
            rng = np.random.default_rng([flip_seed, zlib.crc32(repr(share.slices).encode())])
            flip = rng.random(len(x)) < 0.5
            x[flip] = x[flip, :, ::-1]
        onehot = np.eye(num_classes, dtype=np.float32)[y]
        yield from zip(x, onehot, strict=True)
