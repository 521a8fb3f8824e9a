"""ImageNet-sized JPEGs from scikit-learn's real digits, written once under ``benchmarks/scratch``.

Each image is one digit rendered at 500×375 (the typical ImageNet size) by
``pipeline.data.sample.render_digit`` with Gaussian pixel noise drawn per image from
:data:`NOISE`, saved as a quality-90 JPEG: the noise makes the files 45–110 KB like ImageNet's
(a clean upscaled digit would compress to a few KB and decode unrealistically fast). The tree
is the class-folder layout ``train/<synset>/*.JPEG`` and ``val/<synset>/*.JPEG``.

A tree is reused when its ``tree.json`` matches the requested sizes; datasets ingested from
it (via ``ingest_child.py``, in a process of its own) are reused while complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness.common import WORK_DIR, run_child

WIDTH, HEIGHT = 500, 375
QUALITY = 90
NOISE = (9.0, 24.0)
VERSION = 1


def _tree_spec(train: int, val: int, seed: int, width: int = WIDTH,
               height: int = HEIGHT) -> dict[str, Any]:
    return {"version": VERSION, "train": train, "val": val, "seed": seed, "width": width,
            "height": height, "quality": QUALITY, "noise": list(NOISE)}


def make_tree(train: int, val: int, seed: int = 0, root: Path | None = None,
              width: int = WIDTH, height: int = HEIGHT) -> dict[str, Any]:
    """Write (or reuse) a tree of ``train`` + ``val`` images; returns its description.

    The description has ``root``, the file list ``files`` (train then val, sorted) and the
    byte statistics ``mean_kb``, ``min_kb``, ``max_kb``. ``width`` × ``height`` other than
    the ImageNet-like default (e.g. 80×80 for a small-image training set) go to their own
    directory, ``images-<train>-<val>-s<seed>-<width>x<height>``.
    """
    from pipeline.data.sample import SYNSETS, jpeg_bytes, load_digit_images, render_digit

    size = "" if (width, height) == (WIDTH, HEIGHT) else f"-{width}x{height}"
    root = root or WORK_DIR / f"images-{train}-{val}-s{seed}{size}"
    spec = _tree_spec(train, val, seed, width, height)
    marker = root / "tree.json"
    if marker.exists() and json.loads(marker.read_text()).get("spec") == spec:
        info = json.loads(marker.read_text())
    else:
        shutil.rmtree(root, ignore_errors=True)
        images, labels = load_digit_images()
        sizes: list[int] = []
        for split, count, stream in (("train", train, 0), ("val", val, 1)):
            for i in range(count):
                index = (i + stream * 997) % len(images)
                rng = np.random.default_rng([seed, stream, i])
                img = render_digit(images[index], width, height, rng, noise=rng.uniform(*NOISE))
                data = jpeg_bytes(img, QUALITY)
                synset = SYNSETS[labels[index]]
                path = root / split / synset / f"{synset}_{stream}{i:06d}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                sizes.append(len(data))
        info = {
            "spec": spec,
            "mean_kb": round(float(np.mean(sizes)) / 1024, 1),
            "min_kb": round(min(sizes) / 1024, 1),
            "max_kb": round(max(sizes) / 1024, 1),
        }
        marker.write_text(json.dumps(info, indent=2))
    files = sorted(str(p) for p in (root / "train").rglob("*.JPEG"))
    files += sorted(str(p) for p in (root / "val").rglob("*.JPEG"))
    return {**info, "root": str(root), "files": files}


def describe(tree: dict[str, Any]) -> dict[str, Any]:
    """The tree's description for a result's ``inputs`` (no file list)."""
    spec = tree["spec"]
    return {
        "images": {"train": spec["train"], "val": spec["val"]},
        "source": f"sklearn digits rendered {spec['width']}x{spec['height']}, "
        f"noise sd U{tuple(NOISE)}, "
        f"JPEG q{QUALITY}, class folders",
        "jpeg_kb": {"mean": tree["mean_kb"], "min": tree["min_kb"], "max": tree["max_kb"]},
    }


def run_ingest_child(
    master: str,
    source: str,
    output: str,
    image_size: int,
    warmup_source: str | None = None,
) -> dict[str, Any]:
    """Ingest ``source`` to ``output`` in a fresh process with its own SparkSession."""
    result_file = Path(output).with_name(Path(output).name + ".result.json")
    args = ["--master", master, "--source", source, "--output", output, "--image-size",
            str(image_size)]
    if warmup_source:
        args += ["--warmup-source", warmup_source]
    return run_child("benchmarks.datasets.ingest_child", args, result_file)


def ensure_dataset(tree: dict[str, Any], image_size: int) -> str:
    """Path of a complete ingest output of ``tree`` at ``image_size`` (ingested if missing)."""
    from pipeline.data.readers import DatasetError, validate_dataset

    out = Path(tree["root"]).with_name(Path(tree["root"]).name + f"-dataset{image_size}")
    try:
        validate_dataset(str(out))
    except DatasetError:
        shutil.rmtree(out, ignore_errors=True)
        run_ingest_child("local[2]", tree["root"], str(out), image_size)
        validate_dataset(str(out))
    return str(out)
