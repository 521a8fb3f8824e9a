"""Tiny ImageNet-shaped source trees for the ingest tests, built from the digits.

Every builder returns ``{split: {source: synset}}`` for the images that must come out, so a
test can compare the output row by row.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.sample import jpeg_bytes, load_digit_images, render_digit

SYNSETS = ("n01440764", "n01443537", "n01484850")
Expected = dict[str, dict[str, str]]


def digit_jpeg(index: int, width: int = 40, height: int = 30) -> bytes:
    images, _ = load_digit_images()
    rng = np.random.default_rng(index)
    return jpeg_bytes(render_digit(images[index % len(images)], width, height, rng))


def _encode(img: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt)
    return buffer.getvalue()


def awkward_files() -> tuple[dict[str, bytes], dict[str, str]]:
    """Files that must be repaired (first dict) and files that must be rejected, with the
    start of the expected reason (second dict maps name → reason prefix)."""
    images, _ = load_digit_images()
    base = render_digit(images[5], 40, 30, np.random.default_rng(5))
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    # Cut inside the entropy-coded data (not the headers): OpenCV still decodes this.
    large = jpeg_bytes(render_digit(images[5], 160, 120, np.random.default_rng(5), noise=8.0))
    repaired = {
        "cmyk.JPEG": _encode(base.convert("CMYK"), "JPEG"),
        "gray.JPEG": _encode(base.convert("L"), "JPEG"),
        "palette.png": _encode(palette, "PNG"),
        "rgba.png": _encode(rgba, "PNG"),
        "png_named.JPEG": _encode(base, "PNG"),
    }
    rejected = {
        "truncated.JPEG": (large[: len(large) * 3 // 5], "truncated"),
        "empty.JPEG": (b"", "empty file"),
        "text.JPEG": (b"this is a text file, not an image\n", "not an image"),
    }
    files = {**repaired, **{name: data for name, (data, _) in rejected.items()}}
    return files, {name: reason for name, (_, reason) in rejected.items()}


def build_folders(
    root: Path, per_class: tuple[int, int] = (4, 2), awkward_synset: str | None = None
) -> tuple[Expected, dict[str, str]]:
    """``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG``.

    With ``awkward_synset`` the awkward files go into that train folder. Returns the
    expected rows and the expected rejects ``{source: reason prefix}``.
    """
    expected: Expected = {"train": {}, "val": {}}
    rejects: dict[str, str] = {}
    index = 0
    for split, count in zip(("train", "val"), per_class, strict=True):
        for synset in SYNSETS:
            folder = root / split / synset
            folder.mkdir(parents=True)
            for i in range(count):
                name = f"{synset}_{i}.JPEG"
                (folder / name).write_bytes(digit_jpeg(index))
                expected[split][f"{synset}/{name}"] = synset
                index += 1
    if awkward_synset:
        files, reasons = awkward_files()
        for name, data in files.items():
            (root / "train" / awkward_synset / name).write_bytes(data)
            source = f"{awkward_synset}/{name}"
            if name in reasons:
                rejects[source] = reasons[name]
            else:
                expected["train"][source] = awkward_synset
    return expected, rejects


def val_name(i: int) -> str:
    return f"ILSVRC2012_val_{i + 1:08d}.JPEG"


def build_kaggle(root: Path, per_class: tuple[int, int] = (3, 2)) -> Expected:
    """``ILSVRC/Data/CLS-LOC/{train/<wnid>, val}`` + LOC_val_solution.csv + synset mapping."""
    expected: Expected = {"train": {}, "val": {}}
    base = root / "ILSVRC" / "Data" / "CLS-LOC"
    index = 0
    for synset in SYNSETS:
        (base / "train" / synset).mkdir(parents=True)
        for i in range(per_class[0]):
            name = f"{synset}_{i}.JPEG"
            (base / "train" / synset / name).write_bytes(digit_jpeg(index))
            expected["train"][f"{synset}/{name}"] = synset
            index += 1
    (base / "val").mkdir(parents=True)
    rows = ["ImageId,PredictionString"]
    for i in range(per_class[1] * len(SYNSETS)):
        synset = SYNSETS[(i * 2) % len(SYNSETS)]
        name = val_name(i)
        (base / "val" / name).write_bytes(digit_jpeg(index))
        rows.append(f"{name[:-5]},{synset} 10 20 30 40 {synset} 5 5 9 9")
        expected["val"][name] = synset
        index += 1
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    (root / "LOC_synset_mapping.txt").write_text("".join(f"{s} fish, {s}\n" for s in SYNSETS))
    return expected


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar holding ``files`` (name: bytes), in that order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_tars(root: Path, per_class: tuple[int, int] = (3, 2)) -> Expected:
    """ILSVRC2012_img_train.tar (a tar of class tars), ILSVRC2012_img_val.tar, labels file."""
    expected: Expected = {"train": {}, "val": {}}
    inner = {}
    index = 0
    for synset in reversed(SYNSETS):  # tar order need not be sorted
        files = {}
        for i in range(per_class[0]):
            name = f"{synset}_{i}.JPEG"
            files[name] = digit_jpeg(index)
            expected["train"][f"{synset}.tar/{name}"] = synset
            index += 1
        inner[f"{synset}.tar"] = tar_bytes(files)
    root.mkdir(parents=True, exist_ok=True)
    (root / "ILSVRC2012_img_train.tar").write_bytes(tar_bytes(inner))
    count = per_class[1] * len(SYNSETS)
    val_files, labels = {}, []
    for i in reversed(range(count)):  # stored out of order; labels follow sorted names
        val_files[val_name(i)] = digit_jpeg(index)
        index += 1
    for i in range(count):
        synset = SYNSETS[(i * 2) % len(SYNSETS)]
        labels.append(synset)
        expected["val"][val_name(i)] = synset
    (root / "ILSVRC2012_img_val.tar").write_bytes(tar_bytes(val_files))
    (root / "validation_labels.txt").write_text("\n".join(labels) + "\n")
    return expected
