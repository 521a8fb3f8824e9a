"""An ingest output: the one place that knows its format, and the one input path that reads it.

Below the dataset URL (written by :mod:`pipeline.data.ingest`)::

    train/  val/      Petastorm datasets: image (JPEG of uint8 N×N×3), label int32, synset, source
    rejects/          Parquet (split, source, reason) of inputs that could not be decoded
    classes.txt       one synset per line; a row's label is its line index
    dataset.json      format, image_size, num_classes, rows per split, rejected, layout, ...
    _COMPLETE         written last

The splits stay ordinary Petastorm datasets (``petastorm.make_reader`` and
``make_spark_converter`` read them), but the project reads them itself, without petastorm's
per-row Python path: whole row groups with pyarrow, then JPEG decoding, the area resize and
the left-right flips inside ``tf.data``, a batch of images per parallel ``map`` call in a
fixed order. Everything random (row-group order, rows, flips) derives from
``(seed, epoch, position)`` through :func:`pipeline.seeding.derive_seed` and stateless
TensorFlow ops, so a seed gives the same batches whatever the parallelism.

Images stay uint8 on the way out: the models cast (and rescale) them in their first layers,
on the accelerator when there is one.
"""

from __future__ import annotations

import hashlib
import itertools
import posixpath
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.seeding import derive_seed
from pipeline.store import ArtifactStore, StoreError, join, normalize_url

FORMAT = "lottery-spark/imagenet-petastorm/1"
INFO_FILE = "dataset.json"
CLASSES_FILE = "classes.txt"
SPLITS = ("train", "val")
REQUIRED = (INFO_FILE, CLASSES_FILE, *SPLITS)
COLUMNS = ["image", "label"]  # what training and evaluation read of a row
DECODE_CHUNK = 64  # images per decode call when reading slices to numpy
MAX_UNROLLED = 256  # largest batch decoded by an unrolled graph (graph size grows with it)
HANDOFF_ROWS = 1024  # encoded rows per call from the reading generator into tf.data
# Decoded row groups (unflipped) kept per process, keyed by their stored bytes: a small
# study reads the same split every epoch of every cell, and decoding it again would cost
# more than training a small network on it. Reads of more rows than this never use it.
DECODED_CACHE_BYTES = 64 * 2**20

Columns = tuple[np.ndarray, ...]  # equal-length arrays: (jpeg bytes, labels[, ...])


class DatasetError(ValueError):
    """The URL is not a complete ingest output; the message says what is missing."""


@dataclass(frozen=True)
class RowSlice:
    """Rows ``[start, start + count)`` of one row group of one Parquet file."""

    file: str  # path relative to the split's root
    row_group: int
    start: int
    count: int


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


class IngestedDataset:
    """An ingest output at ``url``: its metadata, its splits and the checks that it is whole."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)

    @cached_property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.url)

    @cached_property
    def info(self) -> dict[str, Any]:
        """The contents of ``dataset.json`` (image_size, num_classes, rows, rejected, ...)."""
        try:
            return self.store.read_json(INFO_FILE)
        except StoreError as exc:
            raise DatasetError(f"{self.url} has no {INFO_FILE}") from exc

    @cached_property
    def classes(self) -> list[str]:
        """The synsets, in label order."""
        try:
            text = self.store.read_text(CLASSES_FILE)
        except StoreError as exc:
            raise DatasetError(f"{self.url} has no {CLASSES_FILE}") from exc
        return [line.strip() for line in text.splitlines() if line.strip()]

    @property
    def image_size(self) -> int:
        """Side N of the stored N×N images."""
        return int(self.info.get("image_size", 0))

    def rows(self, split: str) -> int:
        """Rows of ``split`` as the ingest counted them (0 for an unknown split)."""
        return int(self.info.get("rows", {}).get(split, 0))

    def split(self, name: str) -> DatasetSplit:
        return DatasetSplit(self, name)

    def row_groups(self, split: str) -> list[RowSlice]:
        return self.split(split).row_groups()

    def validate(self) -> dict[str, Any]:
        """Raise DatasetError unless this is a complete ingest output; returns its info."""
        check_reader_filesystem(self.url)
        store = self.store
        if not store.exists():
            raise DatasetError(f"dataset {store.root} does not exist")
        if not store.is_complete():
            raise DatasetError(
                f"{store.root} is not a complete ingest output (no completion marker)")
        for name in REQUIRED:
            if not store.exists(name):
                raise DatasetError(f"{store.root} is not an ingest output: {name} is missing")
        for split in SPLITS:
            if not store.exists(split, "_common_metadata"):
                raise DatasetError(f"{store.url(split)} is not a Petastorm dataset")
        if self.info.get("num_classes") != len(self.classes):
            raise DatasetError(
                f"{store.root}: {INFO_FILE} says {self.info.get('num_classes')} classes, "
                f"{CLASSES_FILE} lists {len(self.classes)}"
            )
        return self.info

    @staticmethod
    def write_metadata(store: ArtifactStore, classes: Sequence[str], info: dict[str, Any]
                       ) -> dict[str, Any]:
        """Ingest side: write ``classes.txt``, ``dataset.json`` and, last, the completion
        marker into ``store`` (the splits are already there). Returns the info written."""
        info = {"format": FORMAT, **info}
        store.write_text("".join(f"{synset}\n" for synset in classes), CLASSES_FILE)
        store.write_json(info, INFO_FILE)
        store.mark_complete(info={"format": FORMAT, "created": info.get("created")})
        return info


class DatasetSplit:
    """One Petastorm split (``train``, ``val``) of an ingest output."""

    def __init__(self, dataset: IngestedDataset, name: str) -> None:
        self.dataset = dataset
        self.name = name
        self.url = join(dataset.url, name)

    @classmethod
    def of(cls, split_url: str) -> DatasetSplit:
        """The split at ``split_url`` (``<dataset URL>/<split name>``)."""
        parent, name = posixpath.split(normalize_url(split_url).rstrip("/"))
        return cls(IngestedDataset(parent), name)

    @property
    def image_size(self) -> int:
        return self.dataset.image_size

    @cached_property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.url)

    # -- stored rows -------------------------------------------------------------------------
    def row_groups(self) -> list[RowSlice]:
        """Every non-empty row group, as whole-group slices, in file order (footers only)."""
        store = self.store
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
            for index in range(meta.num_row_groups):
                rows = meta.row_group(index).num_rows
                if rows:
                    groups.append(RowSlice(path[len(root):], index, 0, rows))
        return groups

    def read_encoded(self, slices: Iterable[RowSlice]) -> tuple[np.ndarray, np.ndarray]:
        """The stored JPEG bytes (object array) and int32 labels of ``slices``, in order."""
        parts = [tuple(c[p.start:p.start + p.count] for c in self._group_encoded(p))
                 for p in slices]
        if not parts:
            return np.zeros((0,), object), np.zeros((0,), np.int32)
        return _concat(parts)

    def _group_encoded(self, piece: RowSlice) -> tuple[np.ndarray, np.ndarray]:
        """JPEG bytes and labels of the whole row group that ``piece`` lies in."""
        store = self.store
        with store.fs.open_input_file(store.path(piece.file)) as fh:
            table = pq.ParquetFile(fh).read_row_group(piece.row_group, columns=COLUMNS)
        return (table.column("image").to_numpy(zero_copy_only=False),
                table.column("label").to_numpy().astype(np.int32))

    # -- decoded rows ------------------------------------------------------------------------
    def read(
        self, slices: Iterable[RowSlice], image_size: int | None = None,
        flip_key: int | None = None, parallel: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``slices`` decoded to ``x`` uint8 ``[n, S, S, 3]`` and ``y`` int32 ``[n]``, in order.

        ``S`` is ``image_size`` (area resize) or the stored size. With ``flip_key`` image
        ``i`` is mirrored left-right when the stateless draw for ``(flip_key, i)`` says so.
        Unflipped reads of small data sets decode whole row groups once per process and
        serve every later slice of them from memory (see ``DECODED_CACHE_BYTES``); the
        arrays returned may then be read-only.
        """
        slices = list(slices)
        size = image_size or self.image_size
        resize = size != self.image_size
        if flip_key is None:
            groups = {(p.file, p.row_group): self._group_encoded(p) for p in slices}
            rows = sum(len(labels) for _, labels in groups.values())
            if rows * size * size * 3 <= _DECODED.limit:
                decoded = {key: _DECODED.get(jpegs, labels, size, partial(
                    decode_numpy, jpegs, size, resize, None, parallel))
                    for key, (jpegs, labels) in groups.items()}
                parts = [tuple(c[p.start:p.start + p.count]
                               for c in decoded[(p.file, p.row_group)]) for p in slices]
                if not parts:
                    return np.zeros((0, size, size, 3), np.uint8), np.zeros((0,), np.int32)
                return _concat(parts) if len(parts) > 1 else parts[0]
        jpegs, labels = self.read_encoded(slices)
        return decode_numpy(jpegs, size, resize, flip_key, parallel), labels

    def load(
        self, limit: int | None = None, cur_shard: int | None = None,
        shard_count: int | None = None, image_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """All (or the first ``limit``) rows in stored order: row groups in file order, every
        ``shard_count``-th from ``cur_shard`` when sharded; at ``image_size`` (default: the
        stored size). For evaluation sets and tests."""
        groups = _shard(self.row_groups(), cur_shard, shard_count)
        if limit is not None:
            taken, kept = 0, []
            for group in groups:
                if taken >= limit:
                    break
                kept.append(RowSlice(group.file, group.row_group, 0,
                                     min(group.count, limit - taken)))
                taken += kept[-1].count
            groups = kept
        return self.read(groups, image_size)

    def batches(
        self,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_epochs: int | None = 1,
        cur_shard: int | None = None,
        shard_count: int | None = None,
        parallel: int | None = None,
        shuffle_buffer: int = 1024,
        drop_remainder: bool = False,
        flip: bool = False,
        image_size: int | None = None,
    ) -> Any:
        """A ``tf.data.Dataset`` of ``(uint8 images [b, S, S, 3], int32 labels [b])``.

        Every iteration of the dataset (a Keras epoch) reads ``num_epochs`` epochs (None:
        without end); epochs are numbered across iterations, so each one gets its own order
        and flips while a fresh dataset with the same seed repeats them exactly. With
        ``shuffle`` the row groups of an epoch are shuffled, the rows of each row group
        too, and a ``shuffle_buffer``-row window mixes across row groups. ``cur_shard`` /
        ``shard_count`` select a disjoint share of row groups. ``flip`` mirrors half of the
        images left-right. ``parallel`` decode calls (None: autotuned) never change the
        order: the map is deterministic.
        """
        import tensorflow as tf

        groups = _shard(self.row_groups(), cur_shard, shard_count)
        size = image_size or self.image_size
        epoch_numbers = itertools.count()

        def encoded() -> Iterator[Columns]:
            epochs = itertools.count() if num_epochs is None else range(num_epochs)
            for _ in epochs:
                yield from _joined(self._epoch(groups, next(epoch_numbers), batch_size, seed,
                                               shuffle, shuffle_buffer, drop_remainder))

        # Each call from tf.data into the Python generator has a fixed cost (about four
        # 160-px JPEG decodes here), so the generator hands over many batches at once; a
        # handoff holds whole batches (only an epoch's last may be short), so re-batching it
        # restores them exactly.
        handoffs = tf.data.Dataset.from_generator(encoded, output_signature=(
            tf.TensorSpec((None,), tf.string),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None, 2), tf.int64),
        ))

        def rebatch(*columns: Any) -> Any:
            return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)

        decode = batch_decoder(batch_size, size, size != self.image_size, flip)

        def decoded(jpegs: Any, labels: Any, seeds: Any) -> Any:
            return decode(jpegs, seeds), labels

        return handoffs.flat_map(rebatch).map(
            decoded, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True
        ).prefetch(tf.data.AUTOTUNE)

    def _epoch(
        self, groups: list[RowSlice], epoch: int, batch_size: int, seed: int, shuffle: bool,
        shuffle_buffer: int, drop_remainder: bool,
    ) -> Iterator[Columns]:
        """One epoch as encoded batches ``(jpegs, labels, flip seeds)`` in their final order."""
        rng = np.random.default_rng(derive_seed(seed, "order", epoch))
        if shuffle:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        tables = self._row_groups_encoded(groups, rng if shuffle else None)
        if shuffle and shuffle_buffer > 1:
            chunks = shuffled_chunks(tables, batch_size, shuffle_buffer, rng, drop_remainder)
        else:
            chunks = rebatched(tables, batch_size, drop_remainder)
        flip_key = derive_seed(seed, "flip", epoch)
        position = 0
        for jpegs, labels in chunks:
            yield jpegs, labels, flip_seeds(flip_key, position, len(labels))
            position += len(labels)

    def _row_groups_encoded(self, groups: list[RowSlice], rng: np.random.Generator | None
                            ) -> Iterator[Columns]:
        """Each row group's ``(jpegs, labels)``, its rows permuted with ``rng`` if given."""
        for group in groups:
            jpegs, labels = self.read_encoded([group])
            if rng is not None:
                order = rng.permutation(len(labels))
                jpegs, labels = jpegs[order], labels[order]
            yield jpegs, labels


class _DecodedCache:
    """Read-only decoded images by a digest of their JPEG bytes, labels and size: an entry is
    the same pixels the decoder would return, and a dataset rewritten in place can never
    hit an old entry. Least recently used entries go first, beyond ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0
        self.entries: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def get(self, jpegs: np.ndarray, labels: np.ndarray, size: int, decode: Any
            ) -> tuple[np.ndarray, np.ndarray]:
        digest = hashlib.blake2b(b"".join(jpegs.tolist()), digest_size=20)
        digest.update(np.fromiter((len(j) for j in jpegs), np.int64, len(jpegs)).tobytes())
        digest.update(labels.tobytes())
        digest.update(str(size).encode())
        key = digest.digest()
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        x = decode()
        if x.nbytes > self.limit:
            return x, labels
        x.flags.writeable = False
        labels = labels.copy()
        labels.flags.writeable = False
        self.entries[key] = (x, labels)
        self.held += x.nbytes
        while self.held > self.limit:
            _, (old, _) = self.entries.popitem(last=False)
            self.held -= old.nbytes
        return x, labels


_DECODED = _DecodedCache(DECODED_CACHE_BYTES)


def _joined(batches: Iterable[Columns], rows: int = HANDOFF_ROWS) -> Iterator[Columns]:
    """Consecutive batches concatenated into pieces of at least ``rows`` rows (the last
    piece may hold fewer)."""
    pending: list[Columns] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += len(batch[0])
        if held >= rows:
            yield _concat(pending)
            pending, held = [], 0
    if pending:
        yield _concat(pending)


def _shard(groups: list[RowSlice], cur_shard: int | None, shard_count: int | None
           ) -> list[RowSlice]:
    return groups if not shard_count else groups[cur_shard or 0::shard_count]


# -- row order -------------------------------------------------------------------------------
def rebatched(chunks: Iterable[Columns], size: int, drop_remainder: bool = False
              ) -> Iterator[Columns]:
    """The rows of ``chunks`` (tuples of equal-length arrays) cut into batches of ``size``;
    the last one may be short unless ``drop_remainder``."""
    pending: list[Columns] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk[0])
        if held >= size:
            joined = _concat(pending)
            cut = held - held % size
            for start in range(0, cut, size):
                yield tuple(c[start:start + size] for c in joined)
            pending = [tuple(c[cut:] for c in joined)]
            held -= cut
    if held and not drop_remainder:
        yield _concat(pending)


def shuffled_chunks(
    chunks: Iterable[Columns], size: int, buffer: int, rng: np.random.Generator,
    drop_remainder: bool = False,
) -> Iterator[Columns]:
    """Batches of ``size`` rows drawn at random from a ``max(buffer, size)``-row window over
    the rows of ``chunks``: the mixing of ``tf.data``'s ``shuffle(buffer).batch(size)``, done
    with one NumPy draw per batch on whole columns (of encoded images, which are small)."""
    limit = max(buffer, size)
    window: Columns | None = None
    for chunk in chunks:
        start, rows = 0, len(chunk[0])
        while start < rows:
            held = 0 if window is None else len(window[0])
            take = min(rows - start, limit - held)
            piece = tuple(c[start:start + take] for c in chunk)
            window = piece if window is None else _concat([window, piece])
            start += take
            if len(window[0]) >= limit:
                picked = rng.choice(limit, size, replace=False)
                yield tuple(c[picked] for c in window)
                keep = np.ones(limit, bool)
                keep[picked] = False
                window = tuple(c[keep] for c in window)
    if window is not None and len(window[0]):
        order = rng.permutation(len(window[0]))
        yield from rebatched([tuple(c[order] for c in window)], size, drop_remainder)


def _concat(chunks: list[Columns]) -> Columns:
    if len(chunks) == 1:
        return chunks[0]
    return tuple(np.concatenate(columns) for columns in zip(*chunks, strict=True))


# -- decoding --------------------------------------------------------------------------------
def flip_seeds(key: int, start: int, count: int) -> np.ndarray:
    """Stateless seeds ``[key, start + i]`` of ``count`` consecutive images."""
    return np.stack([np.full(count, key, np.int64),
                     np.arange(start, start + count, dtype=np.int64)], axis=1)


@lru_cache(maxsize=16)
def batch_decoder(batch: int, size: int, resize: bool, flip: bool) -> Any:
    """A ``tf.function`` ``(jpegs [k] string, seeds [k, 2] int64) -> uint8 [k, size, size, 3]``:
    decode, area resize (with ``resize``: the stored side is not ``size``) rounded back to
    uint8, and (with ``flip``) mirror the images whose stateless draw for their seed says so.

    One call per batch, not per image: ``tf.data``'s per-element overhead would cost about a
    quarter of a small JPEG's decode. Without flips, a batch of ``batch`` images (up to
    MAX_UNROLLED) decodes in a graph with one decode per image, about 8% cheaper per image
    than a ``map_fn`` loop; other sizes (an epoch's short last batch) go through the loop,
    and so do flips, whose per-image ``cond`` costs twice as much unrolled as in the loop."""
    import tensorflow as tf

    def one(jpeg: Any, seed: Any) -> Any:
        # INTEGER_ACCURATE is libjpeg's ISLOW DCT, as OpenCV uses: the pixels are exactly
        # those petastorm's image codec returns for the same row.
        image = tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE")
        if resize:
            image = tf.image.resize(image, (size, size), method="area")
            image = tf.cast(tf.round(image), tf.uint8)
        image = tf.ensure_shape(image, (size, size, 3))
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed)
        return image

    def looped(jpegs: Any, seeds: Any) -> Any:
        return tf.map_fn(lambda args: one(*args), (jpegs, seeds), parallel_iterations=1,
                         fn_output_signature=tf.TensorSpec((size, size, 3), tf.uint8))

    def unrolled(jpegs: Any, seeds: Any) -> Any:
        pairs = zip(tf.unstack(jpegs, num=batch), tf.unstack(seeds, num=batch), strict=True)
        return tf.stack([one(jpeg, seed) for jpeg, seed in pairs])

    @tf.function
    def decode(jpegs: Any, seeds: Any) -> Any:
        if flip or batch > MAX_UNROLLED:
            return looped(jpegs, seeds)
        return tf.cond(tf.shape(jpegs)[0] == batch,
                       lambda: unrolled(tf.ensure_shape(jpegs, (batch,)),
                                        tf.ensure_shape(seeds, (batch, 2))),
                       lambda: looped(jpegs, seeds))

    return decode


def decode_numpy(
    jpegs: np.ndarray, size: int, resize: bool, flip_key: int | None = None,
    parallel: int | None = None,
) -> np.ndarray:
    """Stored JPEGs to uint8 ``[n, size, size, 3]`` through the same decoder as training."""
    import tensorflow as tf

    if not len(jpegs):
        return np.zeros((0, size, size, 3), np.uint8)
    seeds = flip_seeds(flip_key or 0, 0, len(jpegs))
    decode = batch_decoder(DECODE_CHUNK, size, resize, flip_key is not None)
    batches = tf.data.Dataset.from_tensor_slices((jpegs, seeds)).batch(
        DECODE_CHUNK).map(decode, num_parallel_calls=parallel or tf.data.AUTOTUNE,
                          deterministic=True)
    return np.concatenate([b.numpy() for b in batches])
