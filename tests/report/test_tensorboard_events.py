"""TensorBoard scalar event files written through the artifact store."""

from __future__ import annotations

import pytest

from pipeline.store import ArtifactStore
from pipeline.tensorboard_events import EVENTS_FILE, TENSORBOARD_DIR, write_scalars

HISTORY = [
    {"epoch": 2, "loss": 2.0, "val_loss": 2.5, "top1": 0.25, "top5": 0.5,
     "learning_rate": 0.1, "first_step": 10},
    {"epoch": 3, "loss": 1.5, "val_loss": 2.0, "top1": 0.5, "top5": 0.75,
     "learning_rate": 0.05},
    {"epoch": 4, "loss": 1.0, "val_loss": 1.5, "top1": 0.75, "top5": 1.0},  # no learning_rate
]


def read_scalars(path: str) -> dict[str, list[tuple[int, float]]]:
    import tensorflow as tf

    out: dict[str, list[tuple[int, float]]] = {}
    for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
            number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") \
                else float(value.simple_value)
            out.setdefault(value.tag, []).append((int(event.step), number))
    return out


def test_scalars_per_epoch_and_rerun_replaces(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "run"))
    url = write_scalars(store, "L1-k0-none", HISTORY)
    assert url == store.url(TENSORBOARD_DIR, "L1-k0-none")
    folder = tmp_path / "run" / TENSORBOARD_DIR / "L1-k0-none"
    assert [p.name for p in folder.iterdir()] == [EVENTS_FILE]

    scalars = read_scalars(str(folder / EVENTS_FILE))
    assert set(scalars) == {"loss", "val_loss", "top1", "top5", "learning_rate"}
    assert scalars["loss"] == [(2, 2.0), (3, 1.5), (4, 1.0)]
    assert scalars["top1"] == [(2, 0.25), (3, 0.5), (4, 0.75)]
    assert scalars["val_loss"] == [(2, 2.5), (3, 2.0), (4, 1.5)]
    assert scalars["learning_rate"] == [(2, pytest.approx(0.1)), (3, pytest.approx(0.05))]

    # a rerun (here with fewer keys) replaces the file instead of adding a second one
    (folder / "events.out.tfevents.123.host.1.v2").write_bytes(b"stale")
    write_scalars(store, "L1-k0-none", HISTORY, keys=("top5",))
    assert [p.name for p in folder.iterdir()] == [EVENTS_FILE]
    assert read_scalars(str(folder / EVENTS_FILE)) == {"top5": [(2, 0.5), (3, 0.75), (4, 1.0)]}


def test_entry_without_epoch_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="epoch"):
        write_scalars(ArtifactStore(str(tmp_path)), "dense", [{"loss": 1.0}])
