"""Reading an ingest output: metadata, validation, numpy arrays and ``tf.data`` pipelines.

Reader settings: petastorm's ``make_reader`` with a **thread** pool. JPEG decoding happens in
OpenCV, which releases the GIL, so threads scale without the cost of a process pool
(spawning interpreters and pickling every decoded image back). ``workers_count`` threads each
decode one row group at a time, so reader memory is about
``workers_count × row-group images × N×N×3`` bytes. Every reader is used as a context
manager, so its threads are stopped and joined when reading ends, normally or not.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from petastorm import make_reader

from pipeline.store import ArtifactStore, StoreError, join, normalize_url

REQUIRED = ("dataset.json", "classes.txt", "train", "val")
EMPTY_PASS_RETRIES = 3

# petastorm 0.13 drives pyarrow's legacy dataset API from its reader threads; each row group
# read would otherwise print pyarrow (and pandas) deprecation warnings.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"petastorm\.")
warnings.filterwarnings("ignore", message="make_block is deprecated", module=r"pyarrow\.")


class DatasetError(ValueError):
    """The URL is not a complete ingest output; the message says what is missing."""


def read_classes(url: str) -> list[str]:
    """The synsets of an ingest output, in label order."""
    try:
        text = ArtifactStore(url).read_text("classes.txt")
    except StoreError as exc:
        raise DatasetError(f"{normalize_url(url)} has no classes.txt") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def dataset_info(url: str) -> dict[str, Any]:
    """The contents of ``dataset.json`` (image_size, num_classes, rows, rejected, layout ...)."""
    try:
        return ArtifactStore(url).read_json("dataset.json")
    except StoreError as exc:
        raise DatasetError(f"{normalize_url(url)} has no dataset.json") from exc


# petastorm reads object stores through fsspec, which needs these packages for the schemes.
FSSPEC_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}


def check_reader_filesystem(url: str) -> None:
    """Raise DatasetError when petastorm could not open ``url``'s scheme on this machine
    (``gs://`` and ``s3://`` need the ``cloud`` extra: gcsfs and s3fs)."""
    scheme = normalize_url(url).split("://", 1)[0]
    package = FSSPEC_PACKAGES.get(scheme)
    if package is None:
        return
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except (ImportError, ValueError) as exc:
        raise DatasetError(
            f"reading {scheme}:// datasets needs {package}, which is not installed: "
            f"pip install 'lottery-spark[cloud]' on the driver and every executor ({exc})"
        ) from None


def validate_dataset(url: str) -> dict[str, Any]:
    """Raise DatasetError unless ``url`` is a complete ingest output; returns its info."""
    check_reader_filesystem(url)
    store = ArtifactStore(url)
    if not store.exists():
        raise DatasetError(f"dataset {store.root} does not exist")
    if not store.is_complete():
        raise DatasetError(f"{store.root} is not a complete ingest output (no completion marker)")
    for name in REQUIRED:
        if not store.exists(name):
            raise DatasetError(f"{store.root} is not an ingest output: {name} is missing")
    for split in ("train", "val"):
        if not store.exists(split, "_common_metadata"):
            raise DatasetError(f"{store.url(split)} is not a Petastorm dataset")
    info = dataset_info(url)
    classes = read_classes(url)
    if info.get("num_classes") != len(classes):
        raise DatasetError(
            f"{store.root}: dataset.json says {info.get('num_classes')} classes, "
            f"classes.txt lists {len(classes)}"
        )
    return info


def split_url(url: str, split: str) -> str:
    """URL of one split (``train`` or ``val``) of an ingest output."""
    return join(normalize_url(url), split)


def load_numpy(
    split_url: str,
    limit: int | None = None,
    cur_shard: int | None = None,
    shard_count: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All (or the first ``limit``) rows of a split as ``x`` uint8 [n,N,N,3] and ``y`` int32 [n].

    Rows come in a stable order (row groups unshuffled, one in-process worker), so two calls
    return the same arrays. Meant for evaluation sets and tests, not for ImageNet's train split.
    """
    images: list[np.ndarray] = []
    labels: list[int] = []
    with make_reader(
        normalize_url(split_url),
        schema_fields=["image", "label"],
        reader_pool_type="dummy",
        shuffle_row_groups=False,
        num_epochs=1,
        cur_shard=cur_shard,
        shard_count=shard_count,
    ) as reader:
        for row in itertools.islice(reader, limit):
            images.append(row.image)
            labels.append(int(row.label))
    if not images:
        return np.zeros((0, 0, 0, 3), np.uint8), np.zeros((0,), np.int32)
    return np.stack(images).astype(np.uint8, copy=False), np.asarray(labels, np.int32)


def _rows_once(
    url: str,
    shuffle: bool,
    seed: int,
    num_epochs: int | None,
    cur_shard: int | None,
    shard_count: int | None,
    workers_count: int,
) -> Iterator[tuple[np.ndarray, np.int32]]:
    reader = make_reader(
        url,
        schema_fields=["image", "label"],
        reader_pool_type="thread",
        workers_count=workers_count,
        shuffle_row_groups=shuffle,
        shuffle_rows=shuffle,
        seed=seed if shuffle else None,
        num_epochs=num_epochs,
        cur_shard=cur_shard,
        shard_count=shard_count,
        shard_seed=0,
    )
    try:
        for row in reader:
            yield row.image, np.int32(row.label)
    finally:
        # What the reader's __exit__ does, minus cleanup_cache(): with no disk cache that
        # only prints "Cache cleanup complete." to stdout.
        reader.stop()
        reader.join()


def _rows(
    url: str,
    shuffle: bool,
    seed: int,
    num_epochs: int | None,
    cur_shard: int | None,
    shard_count: int | None,
    workers_count: int,
) -> Iterator[tuple[np.ndarray, np.int32]]:
    """Rows of one pass. petastorm 0.13's thread pool can, rarely, end a pass before reading
    anything when it can queue every row group at once (a race in its results check); an
    empty pass is therefore retried, and a split that stays empty is an error."""
    for _ in range(EMPTY_PASS_RETRIES):
        count = 0
        for row in _rows_once(url, shuffle, seed, num_epochs, cur_shard, shard_count,
                              workers_count):
            count += 1
            yield row
        if count:
            return
    if shard_count is None:
        raise DatasetError(f"{url}: the reader returned no rows in {EMPTY_PASS_RETRIES} passes")


def _batches(
    rows: Iterator[tuple[np.ndarray, np.int32]], size: int, drop_remainder: bool = False
):  # noqa: ANN202
    """Stack rows into arrays of ``size`` (the last one may be short)."""
    chunk = list(itertools.islice(rows, size))
    while chunk and (len(chunk) == size or not drop_remainder):
        yield _stack(chunk)
        chunk = list(itertools.islice(rows, size))


def _shuffled_batches(
    rows: Iterator[tuple[np.ndarray, np.int32]],
    size: int,
    buffer: int,
    rng: np.random.Generator,
    drop_remainder: bool = False,
):  # noqa: ANN202
    """Batches drawn at random from a ``buffer``-row window over ``rows``.

    The same mixing as ``tf.data``'s ``shuffle(buffer).batch(size)``, done on Python
    references: tf.data's per-element path costs more than decoding a small JPEG.
    """
    window: list[tuple[np.ndarray, np.int32]] = []
    for row in rows:
        window.append(row)
        if len(window) >= max(buffer, size):
            yield _stack([_take_random(window, rng) for _ in range(size)])
    rng.shuffle(window)  # type: ignore[arg-type]
    yield from _batches(iter(window), size, drop_remainder)


def _take_random(window: list, rng: np.random.Generator):  # noqa: ANN202
    index = int(rng.integers(len(window)))
    window[index], window[-1] = window[-1], window[index]
    return window.pop()


def _flipped(batches: Iterator[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator):  # noqa: ANN202
    """Mirror a random half of every batch's images left-right (training augmentation)."""
    for x, y in batches:
        mirror = rng.random(len(x)) < 0.5
        x[mirror] = x[mirror, :, ::-1]
        yield x, y


def _stack(chunk: list[tuple[np.ndarray, np.int32]]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([c[0] for c in chunk]), np.asarray([c[1] for c in chunk], np.int32)


def make_tf_dataset(
    split_url: str,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    num_epochs: int | None = 1,
    cur_shard: int | None = None,
    shard_count: int | None = None,
    workers_count: int = 4,
    shuffle_buffer: int = 1024,
    drop_remainder: bool = False,
    flip: bool = False,
) -> Any:
    """A ``tf.data.Dataset`` of ``(uint8 images [b,N,N,3], int32 labels [b])``.

    Images stay uint8: the models cast (and rescale) them in their first layers, on the
    accelerator when there is one, so the host neither converts nor copies 4× the bytes.

    Each iteration of the dataset (each Keras epoch) opens its own petastorm reader inside a
    generator and stops it when the iteration ends or its iterator is discarded, so no reader
    threads outlive their use. With ``shuffle`` the row groups are shuffled, rows within a row
    group too, and then a ``shuffle_buffer``-row buffer mixes across row groups; the seed
    advances with every iteration so epochs differ but runs repeat. ``cur_shard`` /
    ``shard_count`` select a disjoint share of row groups (one per data-parallel worker).
    With ``flip``, half of the images (drawn from the pass's seed) are mirrored left-right.
    Rows come in a fixed order for a seed only with ``workers_count=1``: more reader threads
    return row groups in the order they finish.
    """
    import tensorflow as tf

    url = normalize_url(split_url)
    info = _split_image_shape(url)
    epoch = itertools.count()

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        pass_seed = seed + next(epoch)
        rows = _rows(url, shuffle, pass_seed, num_epochs, cur_shard, shard_count, workers_count)
        if shuffle and shuffle_buffer > 1:
            rng = np.random.default_rng(pass_seed)
            batches = _shuffled_batches(rows, batch_size, shuffle_buffer, rng, drop_remainder)
        else:
            batches = _batches(rows, batch_size, drop_remainder)
        if flip:
            batches = _flipped(batches, np.random.default_rng([pass_seed, 1]))
        yield from batches

    dataset = tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec(shape=(None, *info), dtype=tf.uint8),
            tf.TensorSpec(shape=(None,), dtype=tf.int32),
        ),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _split_image_shape(url: str) -> tuple[int, int, int]:
    """The ``image`` field's shape, from the dataset's stored Unischema."""
    from petastorm.etl.dataset_metadata import get_schema_from_dataset_url

    schema = get_schema_from_dataset_url(url)
    return tuple(schema.fields["image"].shape)  # type: ignore[return-value]
