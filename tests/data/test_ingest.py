"""End-to-end ingest in Spark local mode: every layout round-trips, bad files are data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from petastorm import make_reader

from pipeline.data import ingest as ingest_module
from pipeline.data.ingest import ingest_imagenet
from pipeline.data.layouts import IngestError
from pipeline.data.readers import validate_dataset
from pipeline.data.settings import IngestSettings
from pipeline.store import local_path
from tests.support.ingest_trees import SYNSETS, build_folders, build_kaggle, build_tars

SIZE = 16


def _rows(spark, url: str, split: str) -> dict[str, tuple[str, int]]:
    """``{source: (synset, label)}`` read back with plain Spark."""
    frame = spark.read.parquet(f"{url}/{split}")
    assert set(frame.columns) == {"image", "label", "synset", "source"}
    rows = frame.select("source", "synset", "label").collect()
    out = {r.source: (r.synset, r.label) for r in rows}
    assert len(out) == len(rows)
    return out


def _check_output(spark, url, expected, classes, rejects=None):
    validate_dataset(url)
    root = local_path(url)
    with open(f"{root}/classes.txt") as fh:
        assert fh.read().split() == classes
    for split in ("train", "val"):
        rows = _rows(spark, url, split)
        assert {s: syn for s, (syn, _) in rows.items()} == expected[split]
        assert all(classes[label] == syn for syn, label in rows.values())
    table = pq.read_table(f"{root}/rejects")
    got = dict(
        zip(table.column("source").to_pylist(), table.column("reason").to_pylist(), strict=True)
    )
    rejects = rejects or {}
    assert set(got) == set(rejects)
    assert all(got[s].startswith(r) for s, r in rejects.items())
    with open(f"{root}/dataset.json") as fh:
        info = json.load(fh)
    assert info["rows"] == {s: len(expected[s]) for s in ("train", "val")}
    assert info["rejected"] == len(rejects)
    assert info["num_classes"] == len(classes) and info["image_size"] == SIZE
    return info


def test_folders_with_awkward_files(spark, tmp_path):
    expected, rejects = build_folders(tmp_path / "src", awkward_synset=SYNSETS[1])
    result = ingest_imagenet(
        str(tmp_path / "src"), str(tmp_path / "out"), IngestSettings(image_size=SIZE), spark=spark
    )
    assert result.rejected == 3 and result.rows == {"train": 17, "val": 6}
    info = _check_output(spark, result.output, expected, sorted(SYNSETS), rejects)
    assert info["layout"] == "folders"
    # Petastorm reads the same rows back, decoded to the declared shape.
    with make_reader(f"{result.output}/train", reader_pool_type="dummy", num_epochs=1) as reader:
        seen = {}
        for row in reader:
            assert row.image.shape == (SIZE, SIZE, 3) and row.image.dtype == np.uint8
            seen[row.source] = (row.synset, int(row.label))
    assert seen == _rows(spark, result.output, "train")
    assert seen[f"{SYNSETS[1]}/cmyk.JPEG"] == (SYNSETS[1], 1)


def test_kaggle_layout(spark, tmp_path):
    expected = build_kaggle(tmp_path / "src")
    result = ingest_imagenet(
        str(tmp_path / "src"), str(tmp_path / "out"), IngestSettings(image_size=SIZE), spark=spark
    )
    info = _check_output(spark, result.output, expected, sorted(SYNSETS))
    assert info["layout"] == "kaggle"


def test_tars_layout_with_a_class_subset(spark, tmp_path):
    expected = build_tars(tmp_path / "src")
    keep = [SYNSETS[0], SYNSETS[2]]
    subset = {
        split: {s: syn for s, syn in rows.items() if syn in keep}
        for split, rows in expected.items()
    }
    config = IngestSettings(image_size=SIZE, classes=keep)
    result = ingest_imagenet(str(tmp_path / "src"), str(tmp_path / "out"), config, spark=spark)
    info = _check_output(spark, result.output, subset, sorted(keep))
    assert info["layout"] == "tars"


def test_existing_output_needs_overwrite_and_failures_leave_nothing(spark, tmp_path, monkeypatch):
    build_folders(tmp_path / "src", per_class=(1, 1))
    out = tmp_path / "out"
    config = IngestSettings(image_size=SIZE, classes=1)
    first = ingest_imagenet(str(tmp_path / "src"), str(out), config, spark=spark)
    with pytest.raises(IngestError, match="already exists"):
        ingest_imagenet(str(tmp_path / "src"), str(out), config, spark=spark)

    real = ingest_module.write_split

    def fail_on_val(spark, plan, split, url, config):
        if split == "val":
            raise RuntimeError("executor lost")
        return real(spark, plan, split, url, config)

    monkeypatch.setattr(ingest_module, "write_split", fail_on_val)
    with pytest.raises(RuntimeError):
        ingest_imagenet(str(tmp_path / "src"), str(out), config, overwrite=True, spark=spark)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no staging left
    validate_dataset(first.output)  # the old output is untouched

    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        ingest_imagenet(str(tmp_path / "src"), str(fresh), config, spark=spark)
    assert not fresh.exists()

    monkeypatch.setattr(ingest_module, "write_split", real)
    second = ingest_imagenet(str(tmp_path / "src"), str(out), config, overwrite=True, spark=spark)
    assert second.rows == {"train": 1, "val": 1}
    validate_dataset(second.output)
