"""data.holdout_per_class: the holdout carved from train (pipeline/data/holdout.py) and how
the job uses it (pipeline/experiment/holdout_stage.py), on a hand-written split, no Spark."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.data.dataset import DatasetSplit, IngestedDataset
from pipeline.data.holdout import (
    ROW_GROUPS_KEY,
    HoldoutError,
    carve_holdout,
    draw_holdout,
    split_labels,
)
from pipeline.store import ArtifactStore

CLASSES = 3
PER_CLASS = 12
SIZE = 8


def _jpeg(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    """An ingest output whose train split is 2 files x 2 row groups of 3 classes x 12 images
    (mixed order), every image distinct; ``source`` names each."""
    root = tmp_path_factory.mktemp("holdout") / "dataset"
    store = ArtifactStore(str(root))
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(CLASSES), PER_CLASS)).astype(np.int32)
    table = pa.table({
        "image": pa.array([_jpeg(rng) for _ in labels], pa.binary()),
        "label": pa.array(labels, pa.int32()),
        "synset": pa.array([f"n{label:08d}" for label in labels]),
        "source": pa.array([f"img-{i:03d}" for i in range(len(labels))]),
    })
    files = {}
    for index, part in enumerate((table.slice(0, 20), table.slice(20))):
        name = f"part-{index:05d}.parquet"
        buffer = io.BytesIO()
        pq.write_table(part, buffer, row_group_size=10 if index == 0 else 8)
        store.write_bytes(buffer.getvalue(), "train", name)
        files[name] = pq.ParquetFile(io.BytesIO(buffer.getvalue())).metadata.num_row_groups
    val = io.BytesIO()
    pq.write_table(table.slice(0, 6), val)
    store.write_bytes(val.getvalue(), "val", "part-00000.parquet")
    for split in ("train", "val"):  # petastorm's metadata: the schema and per-file counts
        meta = io.BytesIO()
        counts = files if split == "train" else {"part-00000.parquet": 1}
        pq.write_metadata(table.schema.with_metadata({ROW_GROUPS_KEY: json.dumps(counts)}), meta)
        store.write_bytes(meta.getvalue(), split, "_common_metadata")
    IngestedDataset.write_metadata(store, [f"n{c:08d}" for c in range(CLASSES)], {
        "image_size": SIZE, "num_classes": CLASSES,
        "rows": {"train": len(labels), "val": 6}})
    return store.root


def _sources(split_url: str) -> list[str]:
    split = DatasetSplit.of(split_url)
    return [s for g in split.row_groups() for s in pq.ParquetFile(
        split.store.path(g.file)).read_row_group(g.row_group, columns=["source"])
        .column("source").to_pylist()]


def test_holdout_has_n_per_class_and_is_disjoint_from_training(tiny_dataset, tmp_path):
    train_url = f"{tiny_dataset}/train"
    carved = carve_holdout(train_url, str(tmp_path / "splits"), 4, seed=11)
    assert (carved.train_rows, carved.holdout_rows) == (36 - 3 * 4, 3 * 4)
    _, held_labels = split_labels(DatasetSplit.of(carved.holdout_url))
    assert np.bincount(held_labels).tolist() == [4] * CLASSES
    held, kept, everything = (_sources(carved.holdout_url), _sources(carved.train_url),
                              _sources(train_url))
    assert not set(held) & set(kept)
    assert sorted(held + kept) == sorted(everything)
    # the rest keeps the train split's order, files and row groups (less the held rows)
    assert kept == [s for s in everything if s not in set(held)]
    train = DatasetSplit.of(carved.train_url)
    assert sorted({g.file for g in train.row_groups()}) == ["part-00000.parquet",
                                                            "part-00001.parquet"]
    # both are Petastorm datasets of the same schema, their row-group counts their own
    for url in (carved.train_url, carved.holdout_url):
        split = DatasetSplit.of(url)
        schema = pq.read_schema(split.store.path("_common_metadata"))
        assert schema.names == ["image", "label", "synset", "source"]
        counts = json.loads(schema.metadata[ROW_GROUPS_KEY])
        assert counts == {f: sum(1 for g in split.row_groups() if g.file == f)
                          for f in {g.file for g in split.row_groups()}}
    info = IngestedDataset(str(tmp_path / "splits")).info
    assert info["rows"] == {"train": 24, "holdout": 12} and info["image_size"] == SIZE
    assert (info["holdout_per_class"], info["holdout_seed"]) == (4, 11)


def test_same_seed_same_holdout_another_seed_another(tiny_dataset, tmp_path):
    train_url = f"{tiny_dataset}/train"
    a = _sources(carve_holdout(train_url, str(tmp_path / "a"), 3, seed=5).holdout_url)
    b = _sources(carve_holdout(train_url, str(tmp_path / "b"), 3, seed=5).holdout_url)
    c = _sources(carve_holdout(train_url, str(tmp_path / "c"), 3, seed=6).holdout_url)
    assert a == b and a != c
    labels = np.repeat(np.arange(4), 10)
    np.testing.assert_array_equal(draw_holdout(labels, 4, 2, 1), draw_holdout(labels, 4, 2, 1))
    assert not np.array_equal(draw_holdout(labels, 4, 2, 1), draw_holdout(labels, 4, 2, 2))


def test_a_complete_carve_is_read_back_not_redrawn(tiny_dataset, tmp_path):
    train_url = f"{tiny_dataset}/train"
    out = str(tmp_path / "splits")
    first = carve_holdout(train_url, out, 2, seed=3)
    store = ArtifactStore(out)
    stamp = store.fs.get_file_info(store.path("holdout", "part-00000.parquet")).mtime
    assert carve_holdout(train_url, out, 2, seed=3) == first
    assert store.fs.get_file_info(store.path("holdout", "part-00000.parquet")).mtime == stamp
    with pytest.raises(HoldoutError, match="drawn with"):
        carve_holdout(train_url, out, 2, seed=4)
    # a carve that did not finish (no marker) is redone, not trusted
    store.delete("_COMPLETE")
    assert carve_holdout(train_url, out, 2, seed=3) == first and store.is_complete()


def test_impossible_holdouts_are_refused_in_one_line(tiny_dataset, tmp_path):
    from pipeline.config import ConfigError, load_config
    from pipeline.experiment.settings import PruneJobSettings

    train_url = f"{tiny_dataset}/train"
    with pytest.raises(HoldoutError, match="class 0 has only 12 training images, fewer than 13"):
        carve_holdout(train_url, str(tmp_path / "s"), 13, seed=0)
    with pytest.raises(HoldoutError, match="would take all 12 training images of class 0"):
        carve_holdout(train_url, str(tmp_path / "s"), 12, seed=0)
    assert not ArtifactStore(str(tmp_path / "s")).exists()  # refused before writing
    with pytest.raises(HoldoutError, match="must be 0 or more"):
        draw_holdout(np.zeros(3, int), 1, -1, 0)
    with pytest.raises(ConfigError, match="data.holdout_per_class: must be 0 or more, got -2"):
        load_config(PruneJobSettings, None, ["data.holdout_per_class=-2"])


def test_training_reads_no_holdout_image(tiny_dataset, tmp_path):
    """Every share the training procedure reads, on every epoch, comes from the carved
    train split and holds no holdout image."""
    from pipeline.experiment.holdout_stage import holdout_seed, with_holdout
    from pipeline.experiment.preflight import DatasetFacts
    from pipeline.experiment.run_layout import RunLayout
    from pipeline.models.spec import ModelSpec
    from pipeline.train.procedure import TrainingProcedure
    from tests.support.job_settings import tiny_settings

    settings = tiny_settings(tiny_dataset, str(tmp_path), "data.holdout_per_class=3")
    facts = DatasetFacts(url=tiny_dataset, train_url=f"{tiny_dataset}/train",
                         val_url=f"{tiny_dataset}/val", image_size=SIZE, num_classes=CLASSES,
                         train_rows=36, val_rows=6)
    root = RunLayout(f"file://{tmp_path}/run")
    carved = with_holdout(root, settings, facts)
    assert carved.train_url == f"{root.splits_url()}/train" and carved.train_rows == 27
    assert carved.holdout_url == f"{root.splits_url()}/holdout" and carved.holdout_rows == 9
    assert with_holdout(root, settings, carved) == carved  # applied once
    info = IngestedDataset(root.splits_url()).info
    assert info["holdout_seed"] == holdout_seed(settings.run.seed)  # the run's, not a replicate's
    held = {bytes(j) for j in DatasetSplit.of(carved.holdout_url).read_encoded(
        DatasetSplit.of(carved.holdout_url).row_groups())[0]}
    assert len(held) == 9
    procedure = TrainingProcedure(ModelSpec("lenet_300_100", SIZE, CLASSES), carved.train_url,
                                  CLASSES, carved.train_rows, workers=2, batch_size=4,
                                  images_per_task=8, augment=False, seed=1)
    groups = DatasetSplit.of(carved.train_url).row_groups()
    seen = 0
    for epoch in (1, 2, 3):
        for shares in procedure.epoch_rounds(groups, epoch):
            for share in shares:
                assert share.split_url == carved.train_url
                jpegs, _ = DatasetSplit.of(share.split_url).read_encoded(share.slices)
                assert not {bytes(j) for j in jpegs} & held
                seen += len(jpegs)
    assert seen == 3 * procedure.steps_per_epoch * procedure.global_batch
    # no holdout: the facts are the job's own
    plain = tiny_settings(tiny_dataset, str(tmp_path))
    assert with_holdout(RunLayout(f"file://{tmp_path}/other"), plain, facts) is facts


def test_the_job_refuses_a_holdout_a_class_cannot_give(tiny_dataset, tmp_path):
    from pipeline.experiment.holdout_stage import with_holdout
    from pipeline.experiment.preflight import DatasetFacts, PreflightError
    from pipeline.experiment.run_layout import RunLayout
    from tests.support.job_settings import tiny_settings

    facts = DatasetFacts(url=tiny_dataset, train_url=f"{tiny_dataset}/train",
                         val_url=f"{tiny_dataset}/val", image_size=SIZE, num_classes=CLASSES,
                         train_rows=36, val_rows=6)
    settings = tiny_settings(tiny_dataset, str(tmp_path), "data.holdout_per_class=20")
    with pytest.raises(PreflightError, match="^data.holdout_per_class: class 0 has only 12"):
        with_holdout(RunLayout(f"file://{tmp_path}/run"), settings, facts)


def test_no_holdout_keeps_the_run_directory_name():
    """Settings are hashed from their non-default values: data.holdout_per_class = 0 (the
    default) leaves every existing run directory's name as it was."""
    from pipeline.config import load_config
    from pipeline.experiment.run_dir import run_name
    from pipeline.experiment.settings import PruneJobSettings

    def name(*overrides: str) -> str:
        return run_name(load_config(PruneJobSettings, None, ["data.url=file:///data",
                                                             *overrides]))

    assert name() == "lottery-cc155c922e"  # the name before data.holdout_per_class existed
    assert name("data.holdout_per_class=0") == name()
    assert name("data.holdout_per_class=10") != name()
