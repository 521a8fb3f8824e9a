"""Spark ingest throughput against a tight single-core Pillow loop, and local[2] vs local[1].

Input: ImageNet-sized JPEGs (``benchmarks/datasets/imagenet_like.py``: 500×375, 45–110 KB,
class folders), the train split plus a small val split, ingested at
``IngestSettings(image_size=160)`` (all other settings default).

* ``ingest_vs_decode``: images/s of ``ingest_imagenet`` on a ``local[2]`` SparkSession ÷
  (images/s of a single-core loop over the same files × 2 cores). The loop does what the
  ingest does to every image: read the file, ``prepare_image`` (the same draft-mode Pillow
  decode, RGB repair, shorter side 160 and centre crop) and a JPEG encode at the ingest's
  quality (Pillow here; the ingest's petastorm codec encodes with OpenCV). A loop without
  draft-mode decoding is reported in ``inputs`` too. Higher is better.
* ``ingest_scaling``: ingest images/s with ``local[2]`` ÷ with ``local[1]``. Higher is better.

A SparkSession's master cannot change within a process, so every ingest runs in a child
process (``benchmarks/datasets/ingest_child.py``) with its own session. The child first
ingests a small warm-up tree (untimed: Python worker start-up and JVM warm-up, which a real
ImageNet ingest amortises), then the measured tree. Ingest time is the ingest's own
``seconds``: it counts planning, decoding, writing both Petastorm splits, the rejects file and
the metadata, and excludes SparkSession start-up. Every repetition runs the loop, the local[2]
and the local[1] ingest, in alternating order; the local[2] ingest of a repetition is used by
both figures.

An ingest has a fixed cost that a few thousand images do not amortise (two Spark jobs per
split with ``tasks_per_core`` tasks each, petastorm's metadata job, the output files). The
child also times a second ingest of the small warm-up tree in the same session, so ``inputs``
reports the marginal throughput (extra images ÷ extra seconds) and the ratios it gives, next
to the end-to-end figures the results are made of.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import time
from typing import Any

from PIL import Image

from benchmarks.datasets.imagenet_like import describe, make_tree, run_ingest_child
from benchmarks.harness.common import ROOT, WORK_DIR, bench_main, make_result

IMAGE_SIZE = 160
JPEG_QUALITY = 90  # IngestSettings's default: the quality of the stored images
LOOP_CORES = 2


def decode_loop(files: list[str], draft: bool = True) -> float:
    """Images/s of one core doing the ingest's per-image work over ``files``."""
    from pipeline.data.decode import prepare_image

    start = time.perf_counter()
    for path in files:
        with open(path, "rb") as handle:
            data = handle.read()
        pixels = prepare_image(data, IMAGE_SIZE, draft)
        Image.fromarray(pixels).save(io.BytesIO(), "JPEG", quality=JPEG_QUALITY)
    return len(files) / (time.perf_counter() - start)


def _ingest(master: str, tree: dict[str, Any], warmup: dict[str, Any]) -> dict[str, Any]:
    output = WORK_DIR / f"ingest-out-{master.replace('[', '').replace(']', '')}"
    try:
        return run_ingest_child(master, tree["root"], str(output), IMAGE_SIZE, warmup["root"])
    finally:
        shutil.rmtree(output, ignore_errors=True)


def _marginal(child: dict[str, Any]) -> float:
    """Images/s of the images beyond the probe's: the throughput without fixed costs."""
    extra = child["images"] - child["probe_images"]
    return extra / max(child["seconds"] - child["probe_seconds"], 1e-9)


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 1) for v in values]


def run(
    train: int = 2000, val: int = 100, repetitions: int = 3, warmup_images: int = 120
) -> list[dict[str, Any]]:
    """Measure both figures; returns ``[ingest_vs_decode, ingest_scaling]``."""
    tree = make_tree(train, val)
    warmup = make_tree(warmup_images - warmup_images // 6, warmup_images // 6, seed=1)
    files = tree["files"]
    decode_loop(files[:50])  # warm the page cache and Pillow
    loop: list[float] = []
    plain_loop: list[float] = []
    children: dict[str, list[dict[str, Any]]] = {"local[2]": [], "local[1]": []}
    steps = ["loop", *children]
    for rep in range(repetitions):
        for step in steps if rep % 2 == 0 else reversed(steps):
            if step == "loop":
                loop.append(decode_loop(files))
                plain_loop.append(decode_loop(files, draft=False))
                figure = loop[-1]
            else:
                children[step].append(_ingest(step, tree, warmup))
                figure = children[step][-1]["images_per_s"]
            print(f"ingest_throughput rep {rep}: {step} {figure:.1f} images/s", flush=True)
    ips = {master: [c["images_per_s"] for c in runs] for master, runs in children.items()}
    marginal = {master: [_marginal(c) for c in runs] for master, runs in children.items()}
    loop_x2 = [v * LOOP_CORES for v in loop]
    common_inputs = {
        **describe(tree),
        "image_size": IMAGE_SIZE,
        "ingest_config": "IngestSettings(image_size=160), other settings default",
        "timing": "ingest seconds as reported by ingest_imagenet: SparkSession start-up "
        "excluded; planning, both splits, rejects and metadata included; each ingest in its "
        f"own process after an untimed warm-up ingest of {warmup_images} images",
        "images_per_s": {"loop_1_core": _rounded(loop), **{m: _rounded(v) for m, v in ips.items()}},
        "marginal_images_per_s": {m: _rounded(v) for m, v in marginal.items()},
        "marginal": "(images - probe images) / (seconds - probe seconds), the probe being a "
        f"timed ingest of the {warmup_images}-image warm-up tree in the same session: the "
        "throughput without the fixed cost of an ingest (per-split jobs, metadata, files)",
        "probe_seconds": {m: [round(c["probe_seconds"], 2) for c in runs]
                          for m, runs in children.items()},
        "ingest_seconds": {m: [round(c["seconds"], 2) for c in runs]
                           for m, runs in children.items()},
        "cpu_count": os.cpu_count(),
    }
    vs_decode = {
        **common_inputs,
        "baseline": "single-core loop x 2 cores: read file, prepare_image(draft=True), "
        "Pillow JPEG encode q90",
        "plain_loop_images_per_s": _rounded(plain_loop),
        "ratio_vs_plain_loop_x2": round(statistics.median(
            a / (b * LOOP_CORES) for a, b in zip(ips["local[2]"], plain_loop, strict=True)), 3),
        "marginal_ratio": round(statistics.median(
            a / b for a, b in zip(marginal["local[2]"], loop_x2, strict=True)), 3),
    }
    scaling = {
        **common_inputs,
        "baseline": "the same ingest with local[1]",
        "marginal_ratio": round(statistics.median(
            a / b for a, b in zip(marginal["local[2]"], marginal["local[1]"], strict=True)), 3),
    }
    return [
        make_result("ingest_vs_decode", ips["local[2]"], loop_x2, target=0.8, better="higher",
                    unit="images/s", inputs=vs_decode),
        make_result("ingest_scaling", ips["local[2]"], ips["local[1]"], target=1.8,
                    better="higher", unit="images/s", inputs=scaling),
    ]


QUICK = {"train": 300, "val": 30, "repetitions": 2}

if __name__ == "__main__":
    os.chdir(ROOT)
    bench_main(run, QUICK)
