"""Per-round overhead of dense training with Python worker reuse on and off.

Settings: ``conf/local.yaml`` (MobileNetV2 α 0.35 at 32×32) on the data set of
``imagenet_like.make_tree`` ingested at 32×32, ``train.epochs`` epochs of rounds of
``train.round_images_per_worker`` images per worker, one replicate, ``local[2]``. Each
repetition trains the dense stage from scratch twice, each time in a SparkSession of its
own (the setting is read when the context starts): once with ``spark.python.worker.reuse``
true (Spark's default, what the cluster configs keep), once false, in an order that
alternates between repetitions.

A round's overhead is its wall time less the slowest replica's training time (what
``EpochStats.overhead_seconds`` books: shipping weights, starting or reusing the Python
worker, importing TensorFlow, building and compiling the model, reading the share).

* ``worker_reuse_round_overhead``: seconds of overhead per round with reuse on / with reuse
  off, over epochs 2.. (the first epoch's tracing is paid by both). Lower is better; target
  0.5: the compiled-model cache (``pipeline/train/elephas_rounds.py``) should at least halve
  it. ``inputs`` has both sides' seconds per round.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.datasets.imagenet_like import ensure_dataset, make_tree  # noqa: E402
from benchmarks.datasets.prepared_run import run_settings  # noqa: E402
from benchmarks.harness.common import WORK_DIR, make_result  # noqa: E402

IMAGE_SIZE = 32
SOURCE_SIDE = 80


def _overhead_per_round(dataset: str, reuse: bool, epochs: int, tag: str) -> dict[str, float]:
    from pipeline.experiment.dense_stage import dense_history, run_dense_stage
    from pipeline.experiment.job import session_conf
    from pipeline.experiment.preflight import preflight
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.spark_session import get_spark

    out = WORK_DIR / "worker-reuse-runs" / tag
    shutil.rmtree(out, ignore_errors=True)
    settings = run_settings(dataset, f"bench-reuse-{tag}", [
        f"train.epochs={epochs}", "rewind.epochs=[0]", "train.round_images_per_worker=64",
        f"run.output={out}"])
    facts = preflight(settings)
    conf = {**session_conf(settings), "spark.ui.enabled": "false",
            "spark.python.worker.reuse": str(reuse).lower()}
    spark = get_spark(f"bench-reuse-{tag}", master="local[2]", conf=conf)
    try:
        run = RunDirectory(settings, replicate=0)
        run_dense_stage(spark, run, facts)
        history = dense_history(run, epochs)[1:]  # epoch 1 also traces the model
    finally:
        spark.stop()
    rounds = sum(int(h["rounds"]) for h in history)
    return {"overhead_per_round": sum(float(h["overhead_seconds"]) for h in history) / rounds,
            "seconds_per_round": sum(float(h["seconds"]) for h in history) / rounds,
            "rounds": rounds}


def run(train: int = 512, val: int = 64, epochs: int = 3, repetitions: int = 2
        ) -> list[dict[str, Any]]:
    dataset = ensure_dataset(make_tree(train, val, seed=6, width=SOURCE_SIDE,
                                       height=SOURCE_SIDE), IMAGE_SIZE)
    sides: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for rep in range(repetitions):
        for reuse in ((True, False) if rep % 2 == 0 else (False, True)):
            got = _overhead_per_round(dataset, reuse, epochs, "on" if reuse else "off")
            sides[reuse].append(got)
        print(f"worker_reuse: repetition {rep + 1}/{repetitions}: overhead per round "
              f"{sides[True][-1]['overhead_per_round']:.2f}s with reuse, "
              f"{sides[False][-1]['overhead_per_round']:.2f}s without", flush=True)
    inputs = {"conf": "conf/local.yaml", "train_images": train, "image_size": IMAGE_SIZE,
              "epochs": epochs, "round_images_per_worker": 64, "master": "local[2]",
              "reuse_on": sides[True], "reuse_off": sides[False]}
    return [make_result("worker_reuse_round_overhead",
                        [s["overhead_per_round"] for s in sides[True]],
                        [s["overhead_per_round"] for s in sides[False]], target=0.5,
                        better="lower", unit="s overhead per round", inputs=inputs)]


QUICK = {"train": 256, "epochs": 2, "repetitions": 1}

if __name__ == "__main__":
    from benchmarks.harness.common import bench_main

    bench_main(run, QUICK)
