"""The artifact store's guarantees hold on S3 and GCS API servers."""

from __future__ import annotations

import pytest

from pipeline.store import ArtifactStore


def test_writes_are_whole_and_leave_no_temporaries(bucket):
    store = ArtifactStore(f"{bucket}/run")
    store.write_bytes(b"first", "stage", "a.bin")
    store.write_bytes(b"second", "stage", "a.bin")  # replaced, not appended
    assert store.read_bytes("stage", "a.bin") == b"second"
    store.write_json({"k": 1}, "stage", "b.json")
    assert sorted(store.listdir("stage")) == ["a.bin", "b.json"]


def test_a_stage_is_complete_only_after_its_marker(bucket):
    store = ArtifactStore(f"{bucket}/run")
    store.write_bytes(b"x", "dense", "epoch-001.npz")
    assert not store.is_complete("dense")
    store.mark_complete("dense", info={"epochs": 1})
    assert store.is_complete("dense") and store.read_json("dense", "_COMPLETE") == {"epochs": 1}


def test_another_writer_is_seen_at_once(bucket):
    # the driver lists what executors wrote: no listing may be served from a cache
    reader, writer = ArtifactStore(f"{bucket}/run"), ArtifactStore(f"{bucket}/run")
    reader.write_json({}, "grid", "first", "result.json")
    assert reader.listdir("grid") == ["first"]  # a cache would keep this listing
    writer.write_json({"status": "ok"}, "grid", "second", "result.json")
    assert reader.exists("grid", "second", "result.json")
    assert sorted(reader.listdir("grid")) == ["first", "second"]


def test_deleting_a_directory_removes_everything_below(bucket):
    store = ArtifactStore(f"{bucket}/run")
    for name in ("a", "b"):
        store.write_bytes(b"1", "old", name, "f.bin")
    store.delete("old")
    assert not store.exists("old")


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_missing_bucket_is_an_error_naming_it(scheme, s3_env, gcs_env):
    from pipeline.store import StoreError

    store = ArtifactStore(f"{scheme}://no-such-bucket-lottery/run")
    with pytest.raises((StoreError, OSError, FileNotFoundError)):
        store.read_bytes("x")


def test_a_create_only_write_has_one_winner(bucket):
    store = ArtifactStore(f"{bucket}/run")
    assert store.create_exclusive(b"first", "lease.json")
    assert not store.create_exclusive(b"second", "lease.json")
    assert store.read_bytes("lease.json") == b"first"


def test_exactly_one_of_many_drivers_gets_the_lease(bucket):
    from pipeline.experiment.run_lease import LEASE
    from tests.support.leases import race

    store = ArtifactStore(f"{bucket}/run")
    for _ in range(3):
        won = race(store, contenders=6)
        assert len(won) == 1 and store.read_json(LEASE)["token"] == won[0].holder.token
        won[0].release()
        assert not store.exists(LEASE)
