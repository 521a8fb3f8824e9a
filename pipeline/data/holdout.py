"""A holdout carved from a train split: N images of every class drawn with a seed, and the rest.

Val reports, it does not choose: early-stop epochs and any other choice a run makes read the
holdout, a slice of the training data that no model trains on. Both parts are written as
one ingest output of their own (the format of :mod:`pipeline.data.dataset`)::

    train/      the train split without the holdout: the same files, row groups and order,
                each row group less its held-out rows
    holdout/    the held-out rows (part-00000.parquet), in the train split's order
    classes.txt  dataset.json (holdout_per_class, holdout_seed, holdout_of, rows)  _COMPLETE

Each part is a Petastorm dataset with the train split's schema; its ``_common_metadata``
is the source's with the row-group count of each of its own files. The output is staged
and published whole (:class:`pipeline.data.output.StagedOutput`), completion marker last,
so a killed carve leaves nothing that counts and the next run redoes it; a complete one is
read back, not redrawn.

The draw reads only the label column; each class's candidates are taken in their place in
the split, so the holdout depends on the seed, ``N`` and the data alone. Copying the rest
is one task per Parquet file (``mapper``: the job passes Spark's, so a large train split
is copied by the executors; the default copies here, in order).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.data.dataset import DatasetSplit, IngestedDataset, RowSlice
from pipeline.data.output import StagedOutput
from pipeline.store import ArtifactStore, normalize_url

log = logging.getLogger(__name__)

TRAIN_SPLIT = "train"
HOLDOUT_SPLIT = "holdout"
HOLDOUT_FILE = "part-00000.parquet"
ROW_GROUP_ROWS = 1024
METADATA_FILE = "_common_metadata"
ROW_GROUPS_KEY = b"dataset-toolkit.num_row_groups_per_file.v1"  # petastorm's per-file counts

Mapper = Callable[[Callable[[Any], Any], list], list]


class HoldoutError(ValueError):
    """The split cannot give the holdout asked for; the message names the setting."""


@dataclass(frozen=True)
class Holdout:
    """Where a carved holdout and the training rows left beside it live."""

    train_url: str
    holdout_url: str
    train_rows: int
    holdout_rows: int


def split_labels(split: DatasetSplit) -> tuple[list[RowSlice], np.ndarray]:
    """The split's row groups (file order) and every row's label in that order, read from
    the label column alone."""
    groups = split.row_groups()
    labels = []
    for piece in groups:
        with split.store.fs.open_input_file(split.store.path(piece.file)) as fh:
            table = pq.ParquetFile(fh).read_row_group(piece.row_group, columns=["label"])
        values = table.column("label").to_numpy()[piece.start:piece.start + piece.count]
        labels.append(values.astype(np.int64))
    return groups, (np.concatenate(labels) if labels else np.zeros(0, np.int64))


def draw_per_class(labels: np.ndarray, classes: int, count: int, seed: int, setting: str,
                   error: type[Exception], keep_one: bool = False) -> np.ndarray:
    """Sorted positions of ``count`` rows of every class 0..classes-1, drawn with ``seed``;
    a class with too few rows raises ``error`` naming ``setting``. With ``keep_one`` every
    class must also keep a row outside the draw."""
    if count < 0:
        raise error(f"{setting}: must be 0 or more, got {count}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(classes):
        rows = np.flatnonzero(labels == label)
        if len(rows) < count:
            raise error(f"{setting}: class {label} has only {len(rows)} training images, "
                        f"fewer than {count}")
        if keep_one and len(rows) == count:
            raise error(f"{setting}: {count} would take all {len(rows)} training images of "
                        f"class {label} and leave it none to train on")
        chosen.append(rng.choice(rows, size=count, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def draw_holdout(labels: np.ndarray, classes: int, per_class: int, seed: int) -> np.ndarray:
    """Sorted positions of ``per_class`` rows of every class 0..classes-1, drawn with
    ``seed``; every class must keep at least one row for training."""
    return draw_per_class(labels, classes, per_class, seed, "data.holdout_per_class",
                          HoldoutError, keep_one=True)


@dataclass(frozen=True)
class _FileTask:
    """One Parquet file of the source split: copy it less ``held`` rows, return those."""

    source_url: str  # the source split
    file: str  # relative to the split
    out_url: str  # the output split (train/ of the carve)
    held: tuple[tuple[int, tuple[int, ...]], ...]  # (row group, its rows to hold out)


def _carve_file(task: _FileTask) -> tuple[str, int, int, bytes]:
    """Write the file less its held rows; returns (file, row groups written, rows written,
    the held rows as an Arrow IPC stream)."""
    source = ArtifactStore(task.source_url)
    held = dict(task.held)
    buffer, kept_groups, kept_rows, parts = io.BytesIO(), 0, 0, []
    with source.fs.open_input_file(source.path(task.file)) as fh:
        parquet = pq.ParquetFile(fh)
        schema = parquet.schema_arrow
        with pq.ParquetWriter(buffer, schema) as writer:
            for group in range(parquet.metadata.num_row_groups):
                table = parquet.read_row_group(group)
                out = np.ones(table.num_rows, bool)
                out[list(held.get(group, ()))] = False
                if not out.all():
                    parts.append(table.filter(pa.array(~out)))
                    table = table.filter(pa.array(out))
                if table.num_rows:
                    writer.write_table(table, row_group_size=table.num_rows)
                    kept_groups += 1
                    kept_rows += table.num_rows
    ArtifactStore(task.out_url).write_bytes(buffer.getvalue(), task.file)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema) as stream:
        for part in parts:
            stream.write_table(part)
    return task.file, kept_groups, kept_rows, sink.getvalue()


def _local_map(fn: Callable[[Any], Any], items: list) -> list:
    return [fn(item) for item in items]


def _petastorm_metadata(source: ArtifactStore, row_groups: dict[str, int]) -> bytes | None:
    """The source split's ``_common_metadata`` with petastorm's per-file row-group counts
    replaced by ``row_groups`` (None when the source has no such file)."""
    if not source.exists(METADATA_FILE):
        return None
    schema = pq.read_schema(io.BytesIO(source.read_bytes(METADATA_FILE)))
    meta = dict(schema.metadata or {})
    meta.pop(b"ARROW:schema", None)
    if ROW_GROUPS_KEY in meta:
        meta[ROW_GROUPS_KEY] = json.dumps(row_groups).encode()
    buffer = io.BytesIO()
    pq.write_metadata(schema.with_metadata(meta), buffer)
    return buffer.getvalue()


def _tasks(split: DatasetSplit, groups: Sequence[RowSlice], positions: np.ndarray,
           out_url: str) -> list[_FileTask]:
    firsts = np.concatenate([[0], np.cumsum([g.count for g in groups])]).astype(np.int64)
    owner = np.searchsorted(firsts, positions, side="right") - 1
    held: dict[str, dict[int, list[int]]] = {}
    for position, index in zip(positions.tolist(), owner.tolist(), strict=True):
        piece = groups[index]
        rows = held.setdefault(piece.file, {}).setdefault(piece.row_group, [])
        rows.append(position - int(firsts[index]) + piece.start)
    files = list(dict.fromkeys(g.file for g in groups))
    return [_FileTask(split.url, f, out_url,
                      tuple(sorted((g, tuple(r)) for g, r in held.get(f, {}).items())))
            for f in files]


def read_holdout(out_url: str) -> Holdout:
    """The complete carve at ``out_url``, from its ``dataset.json``."""
    dataset = IngestedDataset(out_url)
    return Holdout(dataset.split(TRAIN_SPLIT).url, dataset.split(HOLDOUT_SPLIT).url,
                   dataset.rows(TRAIN_SPLIT), dataset.rows(HOLDOUT_SPLIT))


def carve_holdout(train_url: str, out_url: str, per_class: int, seed: int,
                  mapper: Mapper | None = None) -> Holdout:
    """Write (unless complete already) the ``per_class`` holdout of the split at
    ``train_url``, drawn with ``seed``, and the split without it, at ``out_url``.

    Raises HoldoutError, before writing anything, when a class cannot give ``per_class``
    images and keep one to train on; or when a complete carve at ``out_url`` was drawn
    with other settings.
    """
    out = ArtifactStore(out_url)
    split = DatasetSplit.of(train_url)
    if out.is_complete():
        info = IngestedDataset(out_url).info
        wanted = {"holdout_per_class": per_class, "holdout_seed": seed,
                  "holdout_of": split.url}
        found = {k: info.get(k) for k in wanted}
        if found != wanted:
            raise HoldoutError(f"data.holdout_per_class: {out.root} holds a holdout drawn "
                               f"with {found}, not {wanted}; remove it to draw again")
        return read_holdout(out_url)
    dataset = split.dataset
    groups, labels = split_labels(split)
    positions = draw_holdout(labels, len(dataset.classes), per_class, seed)
    with StagedOutput(normalize_url(out_url), overwrite=True) as staging:
        tasks = _tasks(split, groups, positions, staging.url(TRAIN_SPLIT))
        order = {t.file: i for i, t in enumerate(tasks)}
        results = sorted((mapper or _local_map)(_carve_file, tasks), key=lambda r: order[r[0]])
        held = [pa.ipc.open_stream(r[3]).read_all() for r in results if r[3]]
        holdout = pa.concat_tables(held) if held else None
        if holdout is None or holdout.num_rows != len(positions):
            raise RuntimeError(f"holdout: {0 if holdout is None else holdout.num_rows} rows "
                               f"copied, {len(positions)} drawn")
        buffer = io.BytesIO()
        pq.write_table(holdout, buffer, row_group_size=ROW_GROUP_ROWS)
        staging.write_bytes(buffer.getvalue(), HOLDOUT_SPLIT, HOLDOUT_FILE)
        counts = {TRAIN_SPLIT: {r[0]: r[1] for r in results if r[1]},
                  HOLDOUT_SPLIT: {HOLDOUT_FILE: pq.ParquetFile(
                      io.BytesIO(buffer.getvalue())).metadata.num_row_groups}}
        for name, row_groups in counts.items():
            metadata = _petastorm_metadata(split.store, row_groups)
            if metadata is not None:
                staging.write_bytes(metadata, name, METADATA_FILE)
        train_rows = sum(r[2] for r in results)
        info = {k: v for k, v in dataset.info.items() if k not in ("format", "rows")}
        IngestedDataset.write_metadata(staging, dataset.classes, {
            **info, "rows": {TRAIN_SPLIT: int(train_rows), HOLDOUT_SPLIT: int(holdout.num_rows)},
            "holdout_per_class": per_class, "holdout_seed": seed, "holdout_of": split.url})
    log.info("holdout: %d images per class (%d) drawn with seed %d from %s; %d left to "
             "train on, in %s", per_class, holdout.num_rows, seed, split.url, train_rows,
             out.root)
    return read_holdout(out_url)
