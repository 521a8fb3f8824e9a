"""Reading an ingest output: metadata, validation, numpy and tf.data, and that its splits stay
Petastorm datasets that petastorm itself reads."""

from __future__ import annotations

import gc
import shutil
import threading

import numpy as np
import pytest

from pipeline.data.readers import (
    DatasetError,
    dataset_info,
    load_numpy,
    make_tf_dataset,
    read_classes,
    split_url,
    validate_dataset,
)
from pipeline.data.sample import SYNSETS
from pipeline.store import local_path


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if type(t).__name__ == "WorkerThread"]


def test_metadata(sample_dataset):
    assert read_classes(sample_dataset) == list(SYNSETS)
    info = dataset_info(sample_dataset)
    assert info["rows"] == {"train": 300, "val": 100}
    assert info["image_size"] == 32 and info["num_classes"] == 10 and info["rejected"] == 0
    assert validate_dataset(sample_dataset)["layout"] == "folders"


def test_validate_rejects_incomplete_and_missing(sample_dataset, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        validate_dataset(str(tmp_path / "nothing"))
    copy = tmp_path / "copy"
    shutil.copytree(local_path(sample_dataset), copy)
    (copy / "_COMPLETE").unlink()
    with pytest.raises(DatasetError, match="not a complete ingest output"):
        validate_dataset(str(copy))
    with pytest.raises(ValueError):  # DatasetError is a ValueError
        validate_dataset(str(tmp_path))


def test_load_numpy_whole_limited_and_sharded(sample_dataset):
    url = split_url(sample_dataset, "val")
    x, y = load_numpy(url)
    assert x.shape == (100, 32, 32, 3) and x.dtype == np.uint8
    assert y.dtype == np.int32 and sorted(np.bincount(y)) == [10] * 10
    x5, y5 = load_numpy(url, limit=5)
    assert np.array_equal(x5, x[:5]) and np.array_equal(y5, y[:5])
    shards = [load_numpy(url, cur_shard=i, shard_count=2) for i in range(2)]
    assert sum(len(s[1]) for s in shards) == 100
    keys = [{xi.tobytes() for xi in s[0]} for s in shards]
    assert not keys[0] & keys[1]


def test_images_look_like_the_digits(sample_dataset):
    x, y = load_numpy(split_url(sample_dataset, "train"), limit=20)
    assert x.std(axis=(1, 2, 3)).min() > 10  # real pictures, not blanks
    assert len(set(y.tolist())) > 1


def test_tf_dataset_batches_and_closes_readers(sample_dataset):
    import tensorflow as tf

    url = split_url(sample_dataset, "train")
    dataset = make_tf_dataset(url, batch_size=64, seed=1, workers_count=2)
    for _ in range(2):  # every iteration (epoch) opens and closes its own reader
        total, labels = 0, []
        for images, batch_labels in dataset:
            assert images.dtype == tf.uint8 and batch_labels.dtype == tf.int32
            assert tuple(images.shape[1:]) == (32, 32, 3)
            assert int(tf.reduce_max(images)) > 0  # real pixels, not blanks
            total += int(images.shape[0])
            labels.extend(batch_labels.numpy().tolist())
        assert total == 300 and sorted(np.bincount(labels)) == [30] * 10
        assert not _reader_threads()

    iterator = iter(dataset)
    next(iterator)
    del iterator  # an abandoned iteration stops its reader too
    gc.collect()
    for _ in range(50):
        if not _reader_threads():
            break
        threading.Event().wait(0.1)
    assert not _reader_threads()


def test_tf_dataset_shards_split_the_rows(sample_dataset):
    url = split_url(sample_dataset, "val")
    counts = []
    for shard in range(2):
        dataset = make_tf_dataset(url, 32, shuffle=False, cur_shard=shard, shard_count=2)
        counts.append(sum(int(b[1].shape[0]) for b in dataset))
    assert sum(counts) == 100 and min(counts) > 0


def test_shuffled_batches_keep_every_row_once_and_mix():
    from pipeline.data.dataset import shuffled_chunks

    rows = [(np.full((2, 2, 3), i % 256, np.uint8), np.int32(i)) for i in range(1000)]
    # Rows arrive in column chunks (a row group each), as the reader reads them.
    chunks = [(np.stack([r[0] for r in rows[i:i + 70]]), np.array([r[1] for r in rows[i:i + 70]]))
              for i in range(0, 1000, 70)]

    def run(seed, drop=False):
        batches = list(shuffled_chunks(iter(chunks), 64, 256, np.random.default_rng(seed), drop))
        return [b[1].tolist() for b in batches], batches

    labels, batches = run(3)
    flat = [v for batch in labels for v in batch]
    assert sorted(flat) == list(range(1000))
    assert [len(b) for b in labels] == [64] * 15 + [40]
    assert all((b[0][:, 0, 0, 0] == b[1] % 256).all() for b in batches)  # rows stay whole
    assert flat != list(range(1000)) and run(3)[0] == labels and run(4)[0] != labels
    # A 256-row window: the first batch draws from the first 256 rows only, but not in order.
    assert max(labels[0]) < 256 and labels[0] != sorted(labels[0])
    assert [len(b) for b in run(3, drop=True)[0]] == [64] * 15


def test_splits_stay_petastorm_datasets(spark, sample_dataset, tmp_path):
    """petastorm's own readers still read every split, and our decoder returns exactly the
    pixels of petastorm's image codec for every row."""
    from petastorm import make_reader
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    url = split_url(sample_dataset, "val")
    with make_reader(url, schema_fields=["image", "label"], reader_pool_type="dummy",
                     shuffle_row_groups=False, num_epochs=1) as reader:
        theirs = sorted((int(r.label), r.image.tobytes()) for r in reader)
    x, y = load_numpy(url)
    assert theirs == sorted(zip(y.tolist(), [a.tobytes() for a in x], strict=True))

    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, (tmp_path / "cache").as_uri())
    converter = make_spark_converter(spark.read.parquet(url).select("label"))
    try:
        assert len(converter) == 100
        with converter.make_tf_dataset(batch_size=100, num_epochs=1, workers_count=1) as data:
            labels = np.concatenate([batch.label.numpy() for batch in data])
        assert sorted(labels.tolist()) == sorted(y.tolist())
    finally:
        converter.delete()


def test_batches_do_not_depend_on_parallelism(sample_dataset):
    """One seed, one sequence of batches, whatever the number of decode calls in flight; the
    flips mirror about half of the images and nothing else changes."""
    from pipeline.data.dataset import DatasetSplit

    split = DatasetSplit.of(split_url(sample_dataset, "train"))

    def epochs(parallel: int, flip: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
        data = split.batches(32, seed=7, num_epochs=2, parallel=parallel, flip=flip)
        return [(x.numpy(), y.numpy()) for x, y in data]

    one, four = epochs(1), epochs(4)
    assert len(one) == len(four) == 20  # 2 epochs of 300 rows: 9 batches of 32 and one of 12
    for (x1, y1), (x4, y4) in zip(one, four, strict=True):
        np.testing.assert_array_equal(x1, x4)
        np.testing.assert_array_equal(y1, y4)
    plain = epochs(2, flip=False)
    x_flip, x_plain = (np.concatenate([b[0] for b in run]) for run in (one, plain))
    mirrored = np.array([not np.array_equal(a, b) for a, b in zip(x_flip, x_plain, strict=True)])
    assert np.array_equal(x_flip[mirrored], x_plain[mirrored][:, :, ::-1])
    assert 0.4 < mirrored.mean() < 0.6


def test_decoded_reads_are_cached_read_only_and_keyed_by_content(sample_dataset):
    from pipeline.data.dataset import DatasetSplit, RowSlice, _DecodedCache, decode_numpy

    split = DatasetSplit.of(split_url(sample_dataset, "val"))
    groups = split.row_groups()
    x1, y1 = split.read(groups[:1])
    x2, y2 = split.read(groups[:1])
    assert np.shares_memory(x1, x2)  # the second read came from the cache
    assert not x1.flags.writeable and not y1.flags.writeable
    with pytest.raises(ValueError):
        x1[0, 0, 0, 0] = 1
    part = RowSlice(groups[0].file, groups[0].row_group, 3, 5)  # a slice of a cached group
    x3, _ = split.read([part, groups[-1]])
    jpegs, labels = split.read_encoded([part, groups[-1]])
    assert np.array_equal(x3, decode_numpy(jpegs, 32, False))  # the decoder's own pixels
    assert np.array_equal(x3[:5], x1[3:8])
    assert np.array_equal(split.read([part])[1], labels[:5])

    calls = []

    def decode(n):
        return lambda: calls.append(n) or np.full((n, 2, 2, 3), n, np.uint8)

    cache = _DecodedCache(limit=2 * 12 * 3)  # room for two 3-image entries
    a = np.array([b"ab", b"c", b"d"], object)
    b = np.array([b"a", b"bc", b"d"], object)  # same bytes joined, other images
    labels3 = np.zeros(3, np.int32)
    cache.get(a, labels3, 2, decode(3))
    cache.get(b, labels3, 2, decode(3))
    cache.get(a, labels3, 2, decode(3))
    assert calls == [3, 3]
    cache.get(a, labels3 + 1, 2, decode(3))  # other labels: another entry, the oldest goes
    cache.get(b, labels3, 2, decode(3))
    assert calls == [3, 3, 3, 3] and cache.held <= cache.limit
    big = cache.get(np.array([b"x"] * 9, object), np.zeros(9, np.int32), 2, decode(9))
    assert big[0].flags.writeable  # larger than the whole cache: returned, not kept
    assert len(cache.entries) == 2
