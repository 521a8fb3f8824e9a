"""CIFAR-10 and CIFAR-100 in the exact official pickle format, as folders and as archives,
through the real ingest: pixels, labels and class names round-trip; damaged files stop it
with one line naming the file and nothing written."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.cifar import CIFAR10, CIFAR100, PIXELS
from pipeline.data.dataset import DatasetSplit, IngestedDataset
from pipeline.data.ingest import ingest_imagenet
from pipeline.data.layouts import IngestError
from pipeline.data.settings import IngestSettings
from pipeline.data.units import CifarBatch

PER_BATCH = 12


def _images(count: int, seed: int) -> np.ndarray:
    """Smooth colour images (JPEG keeps them close), each different, uint8 [n, 32, 32, 3]."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, 32)
    out = []
    for _ in range(count):
        a, b, c = rng.uniform(20, 235, 3)
        r = a + 20 * np.outer(ramp, np.ones(32))
        g = b + 20 * np.outer(np.ones(32), ramp)
        bl = np.full((32, 32), c)
        out.append(np.stack([r, g, bl], axis=-1).clip(0, 255).astype(np.uint8))
    return np.stack(out)


def _batch(images: np.ndarray, labels: dict[bytes, list[int]]) -> bytes:
    data = images.transpose(0, 3, 1, 2).reshape(len(images), PIXELS)  # R, G, B planes
    record = {b"batch_label": b"testing batch", b"data": data,
              b"filenames": [f"img_{i}.png".encode() for i in range(len(images))], **labels}
    return pickle.dumps(record, protocol=2)


def write_release(root: Path, release, archive: bool = False, broken: dict | None = None
                  ) -> dict[str, tuple[np.ndarray, dict[bytes, list[int]]]]:
    """The release's files under ``root`` (folder, or tar.gz when ``archive``); returns
    each batch's images and labels. ``broken`` replaces named files' bytes."""
    files: dict[str, bytes] = {}
    batches = {}
    for i, name in enumerate((*release.train, release.test)):
        images = _images(PER_BATCH, seed=i)
        rng = np.random.default_rng(100 + i)
        if release is CIFAR10:
            labels = {b"labels": [int(x) for x in rng.integers(0, 10, PER_BATCH)]}
        else:
            fine = [int(x) for x in rng.integers(0, 100, PER_BATCH)]
            labels = {b"fine_labels": fine, b"coarse_labels": [f // 5 for f in fine]}
        batches[name] = (images, labels)
        files[name] = _batch(images, labels)
    if release is CIFAR10:
        meta = {b"label_names": [f"class{i}".encode() for i in range(10)],
                b"num_cases_per_batch": PER_BATCH, b"num_vis": PIXELS}
    else:
        meta = {b"fine_label_names": [f"fine{i:02d}".encode() for i in range(100)],
                b"coarse_label_names": [f"coarse{i:02d}".encode() for i in range(20)]}
    files[release.meta] = pickle.dumps(meta, protocol=2)
    for name, data in (broken or {}).items():
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(root / release.archive, "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{release.folder}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        (root / release.folder).mkdir()
        for name, data in files.items():
            (root / release.folder / name).write_bytes(data)
    return batches


def _check_round_trip(url: str, batches, names: list[str], label_key: bytes) -> None:
    """Every row's label and class name match its source image; pixels match closely."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dataset = IngestedDataset(url)
    assert dataset.classes == names
    assert dataset.info["rows"] == {"train": PER_BATCH * (len(batches) - 1), "val": PER_BATCH}
    for split in ("train", "val"):
        part = DatasetSplit(dataset, split)
        x, y = part.load()
        table = pa.concat_tables(  # the rows in load()'s order: row groups in file order
            pq.ParquetFile(part.store.path(g.file)).read_row_group(
                g.row_group, columns=["source", "synset"]) for g in part.row_groups())
        sources = table.column("source").to_pylist()
        assert len(sources) == len(set(sources)) == len(y)
        for row, source in enumerate(sources):
            name, index = source.rsplit("/", 1)[-1].split("#")  # "<file>#<index in batch>"
            images, labels = batches[name]
            expected = labels[label_key][int(index)]
            assert y[row] == expected and table.column("synset")[row].as_py() == names[expected]
            # stored as JPEG (quality 100 here): close to the original pixels, not equal
            error = np.abs(x[row].astype(int) - images[int(index)].astype(int)).mean()
            assert error < 2.0, (source, error)


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "archive"])
def test_cifar10_round_trips(spark, tmp_path, archive):
    batches = write_release(tmp_path / "src", CIFAR10, archive=archive)
    source = tmp_path / "src" / CIFAR10.archive if archive else tmp_path / "src"
    config = IngestSettings(image_size=32, jpeg_quality=100)  # layout auto-detected
    result = ingest_imagenet(str(source), str(tmp_path / "out"), config, spark=spark)
    assert result.layout == "cifar10" and result.rejected == 0
    _check_round_trip(str(tmp_path / "out"), batches, [f"class{i}" for i in range(10)],
                      b"labels")


@pytest.mark.parametrize("kind", ["fine", "coarse"])
def test_cifar100_fine_and_coarse_labels(spark, tmp_path, kind):
    batches = write_release(tmp_path / "src", CIFAR100, archive=kind == "coarse")
    config = IngestSettings(image_size=32, jpeg_quality=100, layout="cifar100",
                            cifar100_labels=kind)
    ingest_imagenet(str(tmp_path / "src"), str(tmp_path / "out"), config, spark=spark)
    names = ([f"fine{i:02d}" for i in range(100)] if kind == "fine"
             else [f"coarse{i:02d}" for i in range(20)])
    _check_round_trip(str(tmp_path / "out"), batches, names, f"{kind}_labels".encode())


def test_upscaling_and_a_class_subset(spark, tmp_path):
    write_release(tmp_path / "src", CIFAR10)
    config = IngestSettings(image_size=64, classes=["class3", "class7"])
    ingest_imagenet(str(tmp_path / "src"), str(tmp_path / "out"), config, spark=spark)
    dataset = IngestedDataset(str(tmp_path / "out"))
    assert dataset.classes == ["class3", "class7"] and dataset.image_size == 64
    x, y = DatasetSplit(dataset, "train").load()
    assert x.shape[1:] == (64, 64, 3) and set(y.tolist()) <= {0, 1}


def test_payloads_are_the_exact_pixels(tmp_path):
    batches = write_release(tmp_path / "src", CIFAR10)
    unit = CifarBatch(str(tmp_path / "src"), "cifar10", CIFAR10.folder, None, "data_batch_2",
                      "fine", tuple(range(10)), tuple(f"class{i}" for i in range(10)))
    payloads = list(unit.payloads(1 << 20))
    images, labels = batches["data_batch_2"]
    assert len(payloads) == PER_BATCH
    for i, payload in enumerate(payloads):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(payload.data))), images[i])
        assert payload.label == labels[b"labels"][i]


@pytest.mark.parametrize("name, broken, message", [
    ("data_batch_3", "truncate", "data_batch_3: not a readable pickle"),
    ("test_batch", "shape", "test_batch: data must be an N×3072 uint8 array"),
    ("batches.meta", None, "batches.meta is missing"),
    ("data_batch_1", "code", "data_batch_1: refused, the pickle asks for posix.system"),
])
def test_damaged_files_stop_the_ingest_naming_them(spark, tmp_path, name, broken, message):
    good = _batch(_images(3, 0), {b"labels": [1, 2, 3]})
    if broken == "truncate":
        data = good[: len(good) // 2]
    elif broken == "shape":
        data = pickle.dumps({b"data": np.zeros((3, 1024), np.uint8), b"labels": [1, 2, 3]})
    elif broken == "code":
        data = pickle.dumps(_RunsCode(str(tmp_path / "ran")), protocol=2)
    else:
        data = None
    write_release(tmp_path / "src", CIFAR10, broken={name: data})
    with pytest.raises(IngestError, match=message) as info:
        ingest_imagenet(str(tmp_path / "src"), str(tmp_path / "out"),
                        IngestSettings(image_size=32), spark=spark)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "ran").exists()


class _RunsCode:
    """Unpickles by running a shell command, as a hostile download could."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)
