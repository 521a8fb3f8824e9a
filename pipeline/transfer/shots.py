"""Few-shot training subsets: N images per class of a split, drawn with a seed.

The subset is written as an ingest output of its own (``train/`` plus ``classes.txt`` and
``dataset.json``, completion marker last), so the dense stage and the grid train on it as
on any data set. Only the label column of the split is read to draw it, then only the
row groups holding a drawn image. The draw sorts each class's candidates by their place
in the split first, so it depends on the seed and the data alone.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.data.dataset import DatasetSplit, IngestedDataset
from pipeline.store import ArtifactStore

log = logging.getLogger(__name__)

SHOTS_FILE = "part-00000.parquet"
ROW_GROUP_ROWS = 1024


class ShotsError(ValueError):
    """A class has fewer images than the shots asked for."""


def _labels(split: DatasetSplit) -> tuple[list, np.ndarray, np.ndarray]:
    """(row groups, each row's group index, each row's label), in split order."""
    groups = split.row_groups()
    owners, labels = [], []
    for index, piece in enumerate(groups):
        with split.store.fs.open_input_file(split.store.path(piece.file)) as fh:
            column = pq.ParquetFile(fh).read_row_group(piece.row_group, columns=["label"])
        values = column.column("label").to_numpy()[piece.start:piece.start + piece.count]
        labels.append(values.astype(np.int64))
        owners.append(np.full(len(values), index))
    if not labels:
        return groups, np.zeros(0, int), np.zeros(0, int)
    return groups, np.concatenate(owners), np.concatenate(labels)


def draw_shots(labels: np.ndarray, classes: int, shots: int, seed: int) -> np.ndarray:
    """Sorted positions of ``shots`` rows of every class 0..classes-1, drawn with ``seed``."""
    from pipeline.data.holdout import draw_per_class

    return draw_per_class(labels, classes, shots, seed, "transfer.shots_per_class", ShotsError)


def write_shots(train_url: str, out_url: str, shots: int, seed: int) -> str:
    """Write (unless complete already) the ``shots``-per-class subset of the split at
    ``train_url`` as an ingest output at ``out_url``; returns its train split's URL."""
    out = ArtifactStore(out_url)
    if out.is_complete():
        return out.url("train")
    if out.exists():
        out.delete()  # an earlier attempt that did not finish
    split = DatasetSplit.of(train_url)
    dataset = split.dataset
    groups, owners, labels = _labels(split)
    positions = draw_shots(labels, len(dataset.classes), shots, seed)
    firsts = np.concatenate([[0], np.cumsum([g.count for g in groups])])
    tables = []
    for index in np.unique(owners[positions]):
        piece = groups[index]
        with split.store.fs.open_input_file(split.store.path(piece.file)) as fh:
            table = pq.ParquetFile(fh).read_row_group(piece.row_group)
        rows = positions[owners[positions] == index] - firsts[index] + piece.start
        tables.append(table.take(pa.array(rows)))
    subset = pa.concat_tables(tables)
    buffer = io.BytesIO()
    pq.write_table(subset, buffer, row_group_size=ROW_GROUP_ROWS)
    out.write_bytes(buffer.getvalue(), "train", SHOTS_FILE)
    if split.store.exists("_common_metadata"):
        out.write_bytes(split.store.read_bytes("_common_metadata"), "train", "_common_metadata")
    info = {k: v for k, v in dataset.info.items() if k not in ("format", "rows")}
    IngestedDataset.write_metadata(out, dataset.classes, {
        **info, "rows": {"train": int(subset.num_rows)}, "shots_per_class": shots,
        "shots_seed": seed, "shots_of": split.url})
    log.info("few-shot: %d images per class (%d) drawn with seed %d into %s", shots,
             subset.num_rows, seed, out.root)
    return out.url("train")
