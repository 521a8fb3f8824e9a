"""Cost of early-bird tracking: the dense stage with ``early_bird.enabled`` against without.

Settings: ``conf/local.yaml`` (MobileNetV2 α 0.35 at 32×32, the demo's model) on the data
set of ``imagenet_like.make_tree`` ingested at 32×32, ``train.epochs`` epochs, one
replicate, in one ``local[2]`` SparkSession. Each repetition trains the dense stage twice
from scratch in fresh run directories, once tracking the level-1 mask after every epoch and
once not, in an order that alternates between repetitions so background load hits both.
Tracking runs on the driver between epochs (a magnitude mask of every kernel, its
bit-packed file, the distances to the last W masks, the nuclear norms, both detectors).

* ``early_bird_overhead``: wall time of the tracked dense stage / of the untracked one.
  Lower is better; target 1.05. ``inputs`` gives the tracker's own seconds per stage.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.datasets.imagenet_like import ensure_dataset, make_tree  # noqa: E402
from benchmarks.datasets.prepared_run import job_session, run_settings  # noqa: E402
from benchmarks.harness.common import WORK_DIR, make_result  # noqa: E402

IMAGE_SIZE = 32
SOURCE_SIDE = 80


def _dense_seconds(spark, dataset: str, tracked: bool, epochs: int, tag: str  # noqa: ANN001
                   ) -> tuple[float, float]:
    """(wall seconds of one dense stage from scratch, the tracker's seconds in it)."""
    from pipeline.experiment.dense_stage import run_dense_stage
    from pipeline.experiment.preflight import preflight
    from pipeline.experiment.run_dir import RunDirectory

    settings = run_settings(dataset, f"bench-eb-{tag}", [
        f"train.epochs={epochs}", "rewind.epochs=[0]",
        f"early_bird.enabled={str(tracked).lower()}",
        f"run.output={WORK_DIR / 'early-bird-runs' / tag}"])
    shutil.rmtree(WORK_DIR / "early-bird-runs" / tag, ignore_errors=True)
    facts = preflight(settings)
    run = RunDirectory(settings, replicate=0)
    start = time.perf_counter()
    run_dense_stage(spark, run, facts)
    seconds = time.perf_counter() - start
    tracker = 0.0
    if tracked:
        tracker = float(run.dense_dir().read_json("early_bird.json")["tracking_seconds"])
    return seconds, tracker


def run(train: int = 600, val: int = 100, epochs: int = 4, repetitions: int = 3
        ) -> list[dict[str, Any]]:
    tree = make_tree(train, val, seed=5, width=SOURCE_SIDE, height=SOURCE_SIDE)
    dataset = ensure_dataset(tree, IMAGE_SIZE)
    spark = job_session(run_settings(dataset, "bench-eb", []))
    with_tracking, without, tracker = [], [], []
    try:
        _dense_seconds(spark, dataset, True, 1, "warmup")  # first-use costs, untimed
        for rep in range(repetitions):
            order = (True, False) if rep % 2 == 0 else (False, True)
            for tracked in order:
                seconds, own = _dense_seconds(spark, dataset, tracked, epochs,
                                              "on" if tracked else "off")
                (with_tracking if tracked else without).append(seconds)
                if tracked:
                    tracker.append(own)
            print(f"early_bird_overhead: repetition {rep + 1}/{repetitions}: "
                  f"{with_tracking[-1]:.1f}s tracked, {without[-1]:.1f}s not", flush=True)
    finally:
        spark.stop()
    inputs = {"conf": "conf/local.yaml", "train_images": train, "val_images": val,
              "image_size": IMAGE_SIZE, "epochs": epochs, "repetitions": repetitions,
              "tracked_seconds": [round(s, 2) for s in with_tracking],
              "untracked_seconds": [round(s, 2) for s in without],
              "tracker_seconds": [round(s, 2) for s in tracker]}
    return [make_result("early_bird_overhead", with_tracking, without, target=1.05,
                        better="lower", unit="s per dense stage", inputs=inputs)]


QUICK = {"train": 200, "val": 50, "epochs": 2, "repetitions": 1}

if __name__ == "__main__":
    from benchmarks.harness.common import bench_main

    bench_main(run, QUICK)
