"""Elephas data-parallel training against single-process Keras, and executor memory vs data size.

Dataset: ``imagenet_like.make_tree`` at 80×80 (scikit-learn digits, noisy, JPEG q90, class
folders) ingested once at ``IngestSettings(image_size=64)`` under ``benchmarks/scratch``. Model:
``ModelSpec("mobilenet_v2", 64, 10, alpha=0.35)``, compiled by ``make_spark_model`` with the
project's optimizer (``TrainSettings`` defaults: SGD, momentum 0.9, cosine) and loss.

* ``distributed_vs_single``: images/s of one epoch of ``train_epoch`` (the dense stage's path:
  ``DatasetSplit.row_groups``, ``TrainingProcedure``, ``make_spark_model``) on a ``local[2]``
  SparkSession with 2 workers of ``batch_size`` each ÷ images/s of ``model.fit`` over the same
  images in this (the driver's) process, on the same 2 cores (TensorFlow's default thread
  pools), with batch ``batch_size × 2`` (the workers' global batch per step). Higher is better.
  The distributed side *includes* reading and decoding the Parquet row groups inside the
  tasks and every per-round cost (broadcasting weights and optimizer state, returning and
  averaging deltas, Spark scheduling); the baseline decodes the images into numpy once, up
  front and untimed, and times only ``model.fit``. The epoch is ``train`` images in rounds of
  ``images_per_task`` per worker, sized so every batch is full on both sides (no re-tracing
  for a short last batch). Warm-up, untimed, on both sides: one round of the same shape
  (Python workers start, import TensorFlow, build, compile and trace the model) and one fit
  of ``2 × images_per_task`` images (tracing). Every repetition times one epoch of each side,
  in alternating order. ``inputs`` reports the per-round overhead (round wall time minus the
  slowest task's training pass, ``RoundResult.compute_seconds``:
  ``EpochStats.overhead_seconds / rounds``), the throughput of the slowest tasks' training
  passes alone, images per CPU-second of both sides (``cpu_usage.cpu_seconds``: the driver
  and all its descendants) with the cores each side kept busy, a probe of the cores free on
  the machine (``cpu_usage.available_cores``), and an estimate without decoding (epoch seconds
  minus, per round, ``images_per_task`` × the per-image decode time of ``DatasetSplit.read``
  measured in this process).
* ``memory_growth``: peak resident set of the executors' Python workers (the largest
  ``VmHWM`` of any process under this one whose command line names ``pyspark.daemon`` or
  ``pyspark/worker``; ``child.py`` beside this module polls them) during one epoch of dense training
  at dataset size 4D ÷ at size D, with the same ``images_per_task`` so that every task holds
  the same share: D = ``memory_base`` images in ``memory_base / (2 × memory_round)`` rounds,
  4D in four times as many. Each run is a fresh process with its own SparkSession (fresh
  JVM and Python workers); repetitions alternate the order. Lower is better (target 1.1).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from typing import Any

from benchmarks.datasets.imagenet_like import describe, ensure_dataset, make_tree
from benchmarks.harness.common import ROOT, WORK_DIR, bench_main, make_result, run_child
from benchmarks.harness.cpu_usage import available_cores, cpu_seconds

IMAGE_SIZE = 64
SOURCE_SIDE = 80  # rendered images are resized (shorter side) to IMAGE_SIZE by the ingest
WORKERS = 2
MASTER = f"local[{WORKERS}]"
SPARK_CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": str(WORKERS)}


def small_dataset(train: int, val: int, seed: int = 0, image_size: int = IMAGE_SIZE
                  ) -> tuple[dict[str, Any], str]:
    """An 80×80 tree (larger for a larger ``image_size``) of ``train`` + ``val`` images and
    its ingest at ``image_size`` (both cached)."""
    side = max(SOURCE_SIDE, image_size + image_size // 4)
    tree = make_tree(train, val, seed=seed, width=side, height=side)
    return tree, ensure_dataset(tree, image_size)


def _first_images(groups: list, count: int) -> list:
    """Row-group slices covering the first ``count`` images of ``groups``."""
    from pipeline.train.rounds import RowSlice

    out, left = [], count
    for group in groups:
        if left <= 0:
            break
        take = min(left, group.count)
        out.append(RowSlice(group.file, group.row_group, group.start, take))
        left -= take
    return out


def _decode_all(train_url: str, groups: list, num_classes: int,  # noqa: ANN202
                image_size: int = IMAGE_SIZE):
    """All train images as (uint8 x, one-hot y) and seconds per image of ``DatasetSplit.read``."""
    import numpy as np

    from pipeline.data.dataset import DatasetSplit

    xs, ys = [], []
    start = time.perf_counter()
    for group in groups:
        x, y = DatasetSplit.of(train_url).read((group,), image_size)
        xs.append(x)
        ys.append(y)
    per_image = (time.perf_counter() - start) / sum(len(y) for y in ys)
    labels = np.concatenate(ys)
    return np.concatenate(xs), np.eye(num_classes, dtype=np.float32)[labels], per_image


def _fit_single(model, x, y, batch: int, on_device: bool, rep: int) -> None:  # noqa: ANN001
    """One epoch of the baseline: ``fit`` on numpy, or steps on slices of device tensors."""
    if not on_device:
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0)
        return
    import numpy as np
    import tensorflow as tf

    order = np.random.default_rng(rep + 1).permutation(int(x.shape[0]))
    for begin in range(0, len(order) - batch + 1, batch):
        index = tf.constant(order[begin:begin + batch])
        model.train_on_batch(tf.gather(x, index), tf.gather(y, index))


def throughput(train: int, val: int, repetitions: int, batch_size: int,
               images_per_task: int, image_size: int = IMAGE_SIZE, alpha: float = 0.35,
               workers: int = WORKERS, mixed_precision: bool = False,
               on_device: bool = False) -> dict[str, Any]:
    """Per-repetition images/s of both sides, and what ``inputs`` reports. ``make
    bench-gpu`` calls it at the ImageNet model size with one worker on the GPU, and with
    ``on_device`` the baseline's images already in GPU memory (``train_on_batch`` over
    slices of GPU tensors, in a shuffled order, instead of ``fit`` on numpy)."""
    from pipeline.data.dataset import DatasetSplit
    from pipeline.data.readers import read_classes, split_url
    from pipeline.experiment.settings import TrainSettings
    from pipeline.models.spec import ModelSpec
    from pipeline.spark_session import get_spark
    from pipeline.train.data_parallel import make_spark_model, train_epoch
    from pipeline.train.optimizers import make_loss, make_optimizer
    from pipeline.train.procedure import TrainingProcedure

    if train % (workers * images_per_task) or images_per_task % batch_size:
        raise ValueError("train must be a multiple of workers × images_per_task, and "
                         "images_per_task a multiple of batch_size (full batches only)")
    if mixed_precision:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    tree, dataset = small_dataset(train, val, image_size=image_size)
    classes = len(read_classes(dataset))
    spec = ModelSpec("mobilenet_v2", image_size, classes, alpha=alpha)
    train_url = split_url(dataset, "train")
    groups = DatasetSplit.of(train_url).row_groups()
    images = sum(g.count for g in groups)
    x, y, decode_per_image = _decode_all(train_url, groups, classes, image_size)
    if on_device:
        import tensorflow as tf

        with tf.device("/GPU:0"):
            x, y = tf.constant(x), tf.constant(y)
    settings = TrainSettings(epochs=repetitions + 1, batch_size=batch_size, augment=False,
                             round_images_per_worker=images_per_task,
                             mixed_precision=mixed_precision)
    job = TrainingProcedure(spec, train_url, classes, images, workers, batch_size,
                            images_per_task, augment=False, seed=0,
                            mixed_precision=mixed_precision)
    steps = job.steps_per_epoch
    global_batch = batch_size * workers
    master = f"local[{workers}]"

    spark = get_spark("bench-distributed", master=master,
                      conf={**SPARK_CONF, "spark.sql.shuffle.partitions": str(workers)})
    sc = spark.sparkContext
    spark_model = make_spark_model(spec.build(), job, make_optimizer(settings, steps),
                                   make_loss(0.0))
    single = spec.build()
    single.compile(optimizer=make_optimizer(settings, steps), loss=make_loss(0.0),
                   metrics=["accuracy"])

    load_before = os.getloadavg()
    start = time.monotonic()
    warm_job = dataclasses.replace(job, train_images=workers * images_per_task)
    warm = train_epoch(sc, spark_model, warm_job, _first_images(groups, workers * images_per_task),
                       0)
    warm_distributed = time.monotonic() - start
    start = time.monotonic()
    warm_n = 2 * images_per_task
    _fit_single(single, x[:warm_n], y[:warm_n], global_batch, on_device, rep=-1)
    warm_single = time.monotonic() - start
    print(f"distributed_training: warm-up {warm_distributed:.1f}s distributed "
          f"({warm.rounds} round), {warm_single:.1f}s single", flush=True)

    dist, base, epochs = [], [], []
    cpu: dict[str, list[float]] = {"single": [], "distributed": []}  # images per CPU-second
    busy: dict[str, list[float]] = {"single": [], "distributed": []}  # CPU-s per wall-s
    probe = []
    try:
        for rep in range(repetitions):
            probe.append(available_cores())
            for side in ("single", "distributed") if rep % 2 == 0 else ("distributed", "single"):
                cpu0, t0 = cpu_seconds(), time.perf_counter()
                if side == "single":
                    _fit_single(single, x, y, global_batch, on_device, rep)
                    wall = time.perf_counter() - t0
                    base.append(images / wall)
                    figure = base[-1]
                else:
                    stats = train_epoch(sc, spark_model, job, groups, rep + 1)
                    wall = time.perf_counter() - t0
                    epochs.append(stats)
                    dist.append(stats.images / stats.seconds)
                    figure = dist[-1]
                used = cpu_seconds() - cpu0
                cpu[side].append(images / used)
                busy[side].append(used / wall)
                print(f"distributed_training rep {rep}: {side} {figure:.1f} images/s, "
                      f"{cpu[side][-1]:.1f} images/CPU-s, {busy[side][-1]:.2f} cores busy",
                      flush=True)
    finally:
        spark.stop()
    probe.append(available_cores())
    load_after = os.getloadavg()

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    overhead = [e.overhead_seconds / e.rounds for e in epochs]
    compute = [e.images / max(sum(e.round_seconds) - e.overhead_seconds, 1e-9) for e in epochs]
    decode_round = images_per_task * decode_per_image
    no_decode = [e.images / (e.seconds - e.rounds * decode_round) for e in epochs]
    return {
        "distributed": dist,
        "single": base,
        "inputs": {
            **describe(tree),
            "image_size": image_size,
            "model": f"ModelSpec('mobilenet_v2', {image_size}, {classes}, alpha={alpha})",
            "mixed_precision": mixed_precision,
            "optimizer": "TrainSettings defaults: SGD momentum 0.9, cosine schedule",
            "train_images": images,
            "master": master,
            "workers": workers,
            "batch_size_per_worker": batch_size,
            "single_batch_size": global_batch,
            "images_per_task": images_per_task,
            "rounds_per_epoch": epochs[0].rounds,
            "baseline": ("train_on_batch over the same images, decoded beforehand (untimed) "
                         "into GPU tensors" if on_device else
                         "model.fit in the driver process over the same images, decoded to "
                         "numpy beforehand (untimed); TensorFlow default thread pools on the "
                         "same 2 cores"),
            "distributed_includes": "Parquet read + JPEG decode inside the tasks, broadcast, "
            "delta return and averaging, Spark scheduling",
            "warmup": f"untimed: one distributed round of the same shape ({warm_distributed:.1f}"
            f" s, Python worker start, TensorFlow import, model build and trace) and one "
            f"single-process fit of {warm_n} images ({warm_single:.1f} s, trace)",
            "per_round_overhead_seconds": [round(v, 3) for v in overhead],
            "per_round_overhead_seconds_median": med(overhead),
            "round_seconds": [[round(s, 2) for s in e.round_seconds] for e in epochs],
            "epoch_seconds": [round(e.seconds, 2) for e in epochs],
            "slowest_task_fit_images_per_s": [round(v, 1) for v in compute],
            "ratio_slowest_task_fit_vs_single": med([c / b for c, b in zip(compute, base,
                                                                           strict=True)]),
            "images_per_cpu_second": {k: [round(v, 1) for v in vals] for k, vals in cpu.items()},
            "ratio_per_cpu_second": med([d / b for d, b in zip(cpu["distributed"],
                                                               cpu["single"], strict=True)]),
            "cores_busy": {k: [round(v, 2) for v in vals] for k, vals in busy.items()},
            "cores_available_probe": probe,
            "probe": "CPU-s per wall-s that 2 busy-looping processes got together, before each "
            "repetition and at the end (2.0 = both cores free; other tenants lower it)",
            "cpu_accounting": "user+system CPU of the driver process and all its descendants "
            "(JVM, PySpark daemon, Python workers) over each timed epoch (psutil)",
            "decode_seconds_per_image": round(decode_per_image, 6),
            "distributed_images_per_s_without_decode_estimate": [round(v, 1) for v in no_decode],
            "ratio_without_decode_estimate": med([n / b for n, b in zip(no_decode, base,
                                                                        strict=True)]),
            "loadavg_1_5_15_before_after": [[round(v, 2) for v in load_before],
                                            [round(v, 2) for v in load_after]],
        },
    }


def _memory_child(dataset: str, images_per_task: int, batch_size: int) -> dict[str, Any]:
    args = ["--dataset", dataset, "--images-per-task", str(images_per_task), "--batch-size",
            str(batch_size), "--master", MASTER]
    return run_child("benchmarks.distributed_training.child", args,
                     WORK_DIR / "training-child.result.json")


def memory(base: int, factor: int, round_images: int, batch_size: int, repetitions: int,
           val: int) -> dict[str, Any]:
    if base % (WORKERS * round_images):
        raise ValueError("memory_base must be a multiple of workers × memory_round")
    sizes = {"D": base, f"{factor}D": base * factor}
    datasets = {key: small_dataset(n, val, seed=2) for key, n in sizes.items()}
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in sizes}
    keys = list(sizes)
    for rep in range(repetitions):
        for key in keys if rep % 2 == 0 else reversed(keys):
            runs[key].append(_memory_child(datasets[key][1], round_images, batch_size))
            child = runs[key][-1]
            print(f"distributed_training memory rep {rep}: {key} ({sizes[key]} images, "
                  f"{child['rounds']} rounds) peak {child['peak_hwm_mib']:.0f} MiB", flush=True)
    big, small = keys[1], keys[0]
    return {
        "big": [r["peak_hwm_mib"] for r in runs[big]],
        "small": [r["peak_hwm_mib"] for r in runs[small]],
        "inputs": {
            "images": sizes,
            "source": describe(datasets[small][0])["source"],
            "image_size": IMAGE_SIZE,
            "model": "ModelSpec('mobilenet_v2', 64, 10, alpha=0.35)",
            "master": MASTER,
            "images_per_task": round_images,
            "batch_size_per_worker": batch_size,
            "rounds": {k: runs[k][0]["rounds"] for k in keys},
            "measure": "max VmHWM (kernel peak RSS) over the PySpark daemon and its forked "
            "Python workers, polled every 50 ms during one epoch of train_epoch, one fresh "
            "process and SparkSession per run",
            "peak_rss_polled_mib": {k: [round(r["peak_rss_mib"], 1) for r in runs[k]]
                                    for k in keys},
            "peak_hwm_mib": {k: [round(r["peak_hwm_mib"], 1) for r in runs[k]] for k in keys},
            "per_process_hwm_mib": {k: [r["per_process_hwm_mib"] for r in runs[k]]
                                    for k in keys},
            "epoch_seconds": {k: [round(r["seconds"], 1) for r in runs[k]] for k in keys},
            "share_pixels_mib": round(round_images * IMAGE_SIZE * IMAGE_SIZE * 3 / 2**20, 1),
        },
    }


def run(train: int = 6144, val: int = 200, repetitions: int = 3, batch_size: int = 32,
        images_per_task: int = 1024, memory_base: int = 512, memory_factor: int = 4,
        memory_round: int = 128, memory_repetitions: int = 3) -> list[dict[str, Any]]:
    """Measure both figures; returns ``[distributed_vs_single, memory_growth]``."""
    speed = throughput(train, val, repetitions, batch_size, images_per_task)
    mem = memory(memory_base, memory_factor, memory_round, batch_size, memory_repetitions, val)
    return [
        make_result("distributed_vs_single", speed["distributed"], speed["single"], target=0.8,
                    better="higher", unit="images/s", inputs=speed["inputs"]),
        make_result("memory_growth", mem["big"], mem["small"], target=1.1, better="lower",
                    unit="MiB", inputs=mem["inputs"]),
    ]


QUICK = {"train": 1024, "val": 50, "repetitions": 1, "images_per_task": 256,
         "memory_base": 256, "memory_round": 64, "memory_repetitions": 1}

if __name__ == "__main__":
    os.chdir(ROOT)
    bench_main(run, QUICK)
