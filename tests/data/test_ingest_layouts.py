"""Layout detection, planning, label checks and tar reading on the driver (no Spark)."""

from __future__ import annotations

import io
import tarfile

import pyarrow.fs as pafs
import pytest

from pipeline.data import tars
from pipeline.data.layouts import IngestError, plan_ingest, select_classes
from tests.support.ingest_trees import (
    SYNSETS,
    build_folders,
    build_kaggle,
    build_tars,
    tar_bytes,
    val_name,
)


def _planned(plan, split):
    """``{source: (synset, label)}`` of a plan's listed files or tar members."""
    split_plan = plan.splits[split]
    out = {f.source: (f.synset, f.label) for f in split_plan.files}
    out.update({m.entry.name: (m.synset, m.label) for m in split_plan.tar_members})
    return out


@pytest.mark.parametrize(
    "builder, layout",
    [(build_folders, "folders"), (build_kaggle, "kaggle"), (build_tars, "tars")],
)
def test_auto_detects_each_layout(tmp_path, builder, layout):
    builder(tmp_path)
    plan = plan_ingest(str(tmp_path))
    assert plan.layout == layout
    assert plan.classes == sorted(SYNSETS)


def test_folders_plan_lists_every_file_with_its_label(tmp_path):
    expected, _ = build_folders(tmp_path)
    plan = plan_ingest(str(tmp_path), layout="folders")
    for split in ("train", "val"):
        planned = _planned(plan, split)
        assert {s: syn for s, (syn, _) in planned.items()} == expected[split]
        assert all(plan.classes[label] == syn for syn, label in planned.values())


def test_kaggle_val_labels_come_from_the_csv(tmp_path):
    expected = build_kaggle(tmp_path)
    plan = plan_ingest(str(tmp_path))
    planned = _planned(plan, "val")
    assert {s: syn for s, (syn, _) in planned.items()} == expected["val"]
    assert len(plan.splits["train"].files) == len(expected["train"])


def test_tars_plan_has_one_unit_per_class_tar_and_labels_in_sorted_name_order(tmp_path):
    expected = build_tars(tmp_path)
    plan = plan_ingest(str(tmp_path))
    units = plan.splits["train"].class_tars
    assert [u.synset for u in units] == sorted(SYNSETS)
    assert [u.label for u in units] == [0, 1, 2]
    planned = _planned(plan, "val")
    assert {s: syn for s, (syn, _) in planned.items()} == expected["val"]


def test_class_subset_first_n_and_list(tmp_path):
    build_folders(tmp_path)
    first = plan_ingest(str(tmp_path), classes=2)
    assert first.classes == sorted(SYNSETS)[:2]
    assert {label for _, label in _planned(first, "val").values()} == {0, 1}
    chosen = plan_ingest(str(tmp_path), classes=[SYNSETS[2], SYNSETS[0]])
    assert chosen.classes == [SYNSETS[0], SYNSETS[2]]
    assert {syn for syn, _ in _planned(chosen, "train").values()} == {SYNSETS[0], SYNSETS[2]}


def test_class_subset_errors():
    with pytest.raises(IngestError, match="only 3 training synsets"):
        select_classes(list(SYNSETS), 5)
    with pytest.raises(IngestError, match="n99999999 is not a training synset"):
        select_classes(list(SYNSETS), ["n99999999"])


def test_missing_empty_and_unrecognised_sources(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        plan_ingest(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="is empty"):
        plan_ingest(str(tmp_path / "empty"))
    (tmp_path / "odd" / "images").mkdir(parents=True)
    with pytest.raises(IngestError, match="unrecognised layout"):
        plan_ingest(str(tmp_path / "odd"))


def test_explicit_layout_that_does_not_match(tmp_path):
    build_folders(tmp_path)
    with pytest.raises(IngestError, match="kaggle layout"):
        plan_ingest(str(tmp_path), layout="kaggle")


def test_folders_val_class_unknown_to_train(tmp_path):
    build_folders(tmp_path)
    (tmp_path / "val" / "n09999999").mkdir()
    (tmp_path / "val" / "n09999999" / "x.JPEG").write_bytes(b"x")
    with pytest.raises(IngestError, match="no label"):
        plan_ingest(str(tmp_path))


def test_kaggle_val_image_missing_from_csv(tmp_path):
    build_kaggle(tmp_path)
    extra = tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val" / val_name(999)
    extra.write_bytes(b"x")
    with pytest.raises(IngestError, match=f"{val_name(999)} has no label"):
        plan_ingest(str(tmp_path))


def test_tars_labels_file_too_short(tmp_path):
    build_tars(tmp_path)
    labels = tmp_path / "validation_labels.txt"
    labels.write_text("\n".join(labels.read_text().split()[:-1]) + "\n")
    with pytest.raises(IngestError, match=f"{val_name(5)} has no label"):
        plan_ingest(str(tmp_path))


def test_tar_members_are_read_by_offset_and_streamed(tmp_path):
    payloads = {f"m{i}.bin": bytes([i]) * (300 + 700 * i) for i in range(5)}
    inner = tar_bytes(payloads)
    outer_path = tmp_path / "outer.tar"
    with tarfile.open(outer_path, "w") as archive:
        info = tarfile.TarInfo("inner.tar")
        info.size = len(inner)
        archive.addfile(info, io.BytesIO(inner))
        info = tarfile.TarInfo("dir")
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
    fs = pafs.LocalFileSystem()
    with fs.open_input_file(str(outer_path)) as fh:
        (entry,) = tars.list_members(fh, fh.size(), window=1024)
        streamed = dict(tars.stream_members(fh, entry.offset, entry.size, 4096))
    assert streamed == payloads
    inner_path = tmp_path / "inner.tar"
    inner_path.write_bytes(inner)
    with fs.open_input_file(str(inner_path)) as fh:
        entries = tars.list_members(fh, fh.size(), window=2048)
        picked = [entries[3], entries[1]]
        got = {
            e.name: data
            for e, data in tars.read_entries(fh, sorted(picked, key=lambda e: e.offset), 512)
        }
    assert got == {"m1.bin": payloads["m1.bin"], "m3.bin": payloads["m3.bin"]}
