"""Checksummed checkpoints: a truncated or altered file is detected, never loaded."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.store import ArtifactStore
from pipeline.train.checkpoints import (
    CorruptCheckpoint,
    checkpoint_meta,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(str(tmp_path))


def test_round_trip_with_meta(store):
    weights = [np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1.5], np.float64)]
    save_checkpoint(store, weights, "epoch-001", meta={"epoch": 1})
    assert has_checkpoint(store, "epoch-001")
    loaded = load_checkpoint(store, "epoch-001")
    for a, b in zip(weights, loaded, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert checkpoint_meta(store, "epoch-001") == {"epoch": 1}


def test_truncated_file_is_reported(store, tmp_path):
    save_checkpoint(store, [np.ones((100, 100), np.float32)], "w")
    path = tmp_path / "w.npz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpoint, match="w.npz is corrupt"):
        load_checkpoint(store, "w")


def test_flipped_byte_is_reported(store, tmp_path):
    save_checkpoint(store, [np.zeros(1000, np.float32)], "w")
    path = tmp_path / "w.npz"
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(store, "w")


def test_missing_record_means_unfinished(store, tmp_path):
    save_checkpoint(store, [np.zeros(3)], "w")
    (tmp_path / "w.json").unlink()
    assert not has_checkpoint(store, "w")
    with pytest.raises(CorruptCheckpoint, match="missing"):
        load_checkpoint(store, "w")
