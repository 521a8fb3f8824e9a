"""TensorBoard scalar event files for per-epoch histories, written through the artifact store.

TensorFlow's summary writer only writes to file systems TensorFlow itself knows, so the
event file is written to a local temporary directory and then copied below
``<store>/tensorboard/<name>/`` with :meth:`~pipeline.store.ArtifactStore.write_bytes`,
which works for ``file://``, ``hdfs://``, ``gs://`` and ``s3://`` alike. Point TensorBoard
at ``<store>/tensorboard`` to see every model of a run side by side.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

from pipeline.store import ArtifactStore

TENSORBOARD_DIR = "tensorboard"
DEFAULT_KEYS = ("loss", "val_loss", "top1", "top5", "learning_rate", "holdout_loss",
                "holdout_top1")  # the holdout's only in runs with one
# One fixed name per model: a rerun replaces the file instead of adding a second one, which
# TensorBoard would merge into duplicated points. TensorBoard reads any "*tfevents*" file.
EVENTS_FILE = "events.out.tfevents.lottery-spark.v2"


def _scalar(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    return float(value)


def events_bytes(history: Sequence[Mapping[str, Any]], keys: Iterable[str] = DEFAULT_KEYS) -> bytes:
    """The bytes of one TensorBoard event file: a scalar per key per history entry, at step
    ``entry["epoch"]``. Keys an entry lacks (or holds no number for) are skipped."""
    import tensorflow as tf

    keys = tuple(keys)
    with tempfile.TemporaryDirectory(prefix="tensorboard-") as tmp:
        writer = tf.summary.create_file_writer(tmp)
        try:
            with writer.as_default():
                for i, entry in enumerate(history):
                    if "epoch" not in entry:
                        raise ValueError(f"history entry {i} has no 'epoch': {dict(entry)}")
                    step = int(entry["epoch"])
                    for key in keys:
                        value = _scalar(entry.get(key))
                        if value is not None:
                            tf.summary.scalar(key, value, step=step)
        finally:
            writer.close()
        files = sorted(f for f in os.listdir(tmp) if "tfevents" in f)
        if len(files) != 1:
            raise RuntimeError(f"expected one event file from the summary writer, got {files}")
        with open(os.path.join(tmp, files[0]), "rb") as fh:
            return fh.read()


def write_scalars(
    store: ArtifactStore,
    name: str,
    history: Sequence[Mapping[str, Any]],
    keys: Iterable[str] = DEFAULT_KEYS,
) -> str:
    """Write ``history`` (per-epoch dicts with ``epoch``) as TensorBoard scalars below
    ``store``'s ``tensorboard/<name>/``; returns that directory's URL.

    Rerunning replaces the previous file (and removes any other file left there), so the
    directory always holds exactly one event file for ``name``.
    """
    data = events_bytes(history, keys)
    store.write_bytes(data, TENSORBOARD_DIR, name, EVENTS_FILE)
    for stale in store.listdir(TENSORBOARD_DIR, name):
        if stale != EVENTS_FILE:
            store.delete(TENSORBOARD_DIR, name, stale)
    return store.url(TENSORBOARD_DIR, name)
