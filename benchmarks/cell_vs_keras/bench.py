"""A grid cell's training throughput in its Spark task against plain Keras on numpy arrays.

Run directories (``benchmarks/datasets/prepared_run.py``, prepared once and kept under
``benchmarks/scratch/grid-runs``): ``conf/local.yaml`` (MobileNetV2, alpha 0.35, BatchNorm
momentum 0.9, SGD with momentum, cosine schedule, no augmentation) at ``image_size`` on the
data set of ``imagenet_like.make_tree`` at 80×80 ingested at ``image_size``, one pruning
level, rewind point 0, no controls; two of them, identical but for ``train.epochs`` (``short``
and ``long`` of ``epochs``). The cell timed is the level-1 ticket ``L1-k0-none`` (half of
every prunable kernel masked, rewound to the initialization), trained by the dense stage's
procedure: ``ctx.workers`` replicas of batch ``train.batch_size``, one after another in the
task, averaged every round.

* ``cell_vs_keras``: a cell's training images/s in steady-state epochs ÷ images/s of
  ``model.fit`` on the same images already in memory. Higher is better; the target is 0.9.

  - The cell: ``pipeline.experiment.grid.train_cells`` (``retrain=True``) trains it as a
    one-cell grid wave: one Spark task on a ``local[2]`` session with the job's session
    settings (``spark.task.cpus`` = ``grid.task_cpus``), ``configure_task_devices`` and
    ``train_in_task``, which reads the train split through the cell's own input path
    (whichever reader is in place) and evaluates on the val split after every epoch.
  - The baseline, in a Spark task of the same session (the same Python worker, so the same
    TensorFlow thread pools: ``configure_task_devices`` sizes them to ``spark.task.cpus``),
    does what ``train_in_task`` does with the reader taken out: ``clear_session``,
    ``make_deterministic`` with the cell's seed, ``prepare_model`` (masks, rewind), compile
    with the job's optimizer and loss, then ``long`` times ``model.fit`` for one epoch on the
    split loaded beforehand, untimed, with ``load_numpy`` (uint8 images, one-hot labels),
    followed by ``evaluate_local`` on the val split. The arrays reach ``fit`` as
    ``tf.data.Dataset.from_tensor_slices(...).shuffle(n).batch(batch).repeat()``
    with the cell's ``steps_per_epoch``, not as ``fit(x, y)``: with one inter-op thread (a
    one-core task) Keras' numpy adapter stalls ~2.3 s in about half of the ``fit`` calls
    (5.2 s epochs on 2.9 CPU-seconds, TensorFlow 2.19), which would flatter the cell.
  - Only training counts. A cell reports one figure, ``train_seconds`` (model build to last
    evaluation), and its fixed costs are large next to a few small epochs (tracing the
    training step alone takes longer than an epoch of 2,000 64-px images). So the figure is
    the difference of two cells: (``train_seconds`` of the ``long``-epoch cell − that of the
    ``short``-epoch cell − the difference of their evaluation time) ÷ (``long`` − ``short``)
    is the cell's seconds per steady-state epoch; set-up and the first epoch's tracing are
    paid by both cells and cancel out. Evaluation is subtracted with the baseline's timings
    of the same ``evaluate_local`` calls in the same repetition and worker (or with the
    cell's own ``eval_seconds`` per epoch, should its history ever carry them). The baseline's
    figure is the mean ``fit`` seconds of its epochs ``short + 1 .. long``: the same epochs.

``inputs`` says where the rest of the ``long``-epoch cell's time goes (medians): set-up
(build, masks, rewind, compile), evaluation after every epoch, the first epoch's extra
(tracing), training at the baseline's rate, the input path's cost in steady epochs, and the
rest (the cell's one-off costs that the baseline has not: building its dataset, the first
pass's start). It also gives the all-inclusive ratio, one pass of the reader alone
(``pipeline.data.readers.make_tf_dataset`` over the train split, same batch) in images per
wall second and per CPU-second of the worker, and the cores each side kept busy. An untimed
warm-up trains both cells and runs the baseline once; repetitions rotate the order of the
three.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from benchmarks.datasets.imagenet_like import describe, ensure_dataset, make_tree
from benchmarks.datasets.prepared_run import job_session, prepare_run, run_settings, settings_note
from benchmarks.harness.common import ROOT, bench_main, make_result
from benchmarks.harness.cpu_usage import available_cores, cpu_seconds, spark_python_workers

SOURCE_SIDE = 80
MASTER = "local[2]"


def _keras_task(_: int, ctx, cell) -> dict[str, Any]:  # noqa: ANN001
    """Spark task: ``train_in_task`` without the reader (see the module docstring)."""
    import numpy as np

    from pipeline.train.devices import configure_task_devices

    devices = configure_task_devices(ctx.train.mixed_precision)
    import keras
    import tensorflow as tf

    from pipeline.data.readers import load_numpy, make_tf_dataset
    from pipeline.experiment.cell_run import prepare_model
    from pipeline.seeding import make_deterministic
    from pipeline.train.evaluation import evaluate_local
    from pipeline.train.optimizers import make_loss, make_optimizer

    x, labels = load_numpy(ctx.train_url)
    y = np.eye(ctx.num_classes, dtype=np.float32)[labels]
    seed = cell.seed(ctx.run_seed)
    batch = ctx.train.batch_size
    # the cell's images per epoch (whole global batches), at the replicas' batch
    steps = ctx.procedure().steps_per_epoch * ctx.workers
    in_memory = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed)
                 .batch(batch, drop_remainder=True).repeat())

    keras.backend.clear_session()
    make_deterministic(seed, enabled=ctx.deterministic)
    start = time.monotonic()
    model, _, _, _ = prepare_model(ctx, cell)
    model.compile(optimizer=make_optimizer(ctx.train, steps),
                  loss=make_loss(ctx.train.label_smoothing))
    setup = time.monotonic() - start
    fit, evaluation, fit_cpu = [], [], []
    for epoch in range(1, ctx.train.epochs + 1):
        cpu, start = time.process_time(), time.monotonic()
        model.fit(in_memory, epochs=epoch, initial_epoch=epoch - 1, steps_per_epoch=steps,
                  verbose=0)
        fit.append(time.monotonic() - start)
        fit_cpu.append(time.process_time() - cpu)
        start = time.monotonic()
        evaluate_local(model, ctx.val_url, ctx.spec.image_size, ctx.eval_batch_size)
        evaluation.append(time.monotonic() - start)

    # The reader alone: one shuffled pass over the train split, batches counted, not used.
    cpu, start = time.process_time(), time.monotonic()
    batches = make_tf_dataset(ctx.train_url, batch, shuffle=True, seed=seed + 1,
                              workers_count=ctx.reader_workers)
    read = sum(int(images.shape[0]) for images, _ in batches)
    reader_seconds, reader_cpu = time.monotonic() - start, time.process_time() - cpu
    return {
        "pid": os.getpid(),
        "devices": devices,
        "images": int(len(x)),
        "setup_seconds": setup,
        "fit_seconds": fit,
        "fit_cpu_seconds": fit_cpu,
        "eval_seconds": evaluation,
        "reader_images": read,
        "reader_seconds": reader_seconds,
        "reader_cpu_seconds": reader_cpu,
    }


def _keras_side(spark, ctx, cell) -> dict[str, Any]:  # noqa: ANN001
    import functools

    task = functools.partial(_keras_task, ctx=ctx, cell=cell)
    spark.sparkContext.setJobDescription("keras baseline")
    return spark.sparkContext.parallelize([0], 1).map(task).collect()[0]


def _cell_side(spark, prepared, cell) -> dict[str, Any]:  # noqa: ANN001
    from pipeline.experiment.grid import train_cells

    cpu, start = cpu_seconds(), time.monotonic()
    row = train_cells(spark, prepared.run, prepared.ctx, [cell], retrain=True)[cell]
    wall = time.monotonic() - start
    if row.get("status") != "ok":
        raise RuntimeError(f"cell {cell.name} failed: {(row.get('error') or '')[-800:]}")
    history = row.get("history") or []
    own_eval = [h["eval_seconds"] for h in history if "eval_seconds" in h]
    return {
        "train_seconds": row["train_seconds"],
        "own_eval_seconds": own_eval if history and len(own_eval) == len(history) else None,
        "wave_seconds": wall,
        "cpu_seconds": cpu_seconds() - cpu,
        "top1": row.get("top1"),
    }


def _overrides(image_size: int, epochs: int, alpha: float, mixed_precision: bool) -> list[str]:
    return ["model.name=mobilenet_v2", f"model.alpha={alpha}", f"model.image_size={image_size}",
            f"train.epochs={epochs}", "prune.levels=1", "rewind.epochs=[0]", "grid.controls=[]",
            f"train.mixed_precision={str(mixed_precision).lower()}"]


def run(train: int = 2048, val: int = 128, image_size: int = 64, epochs: tuple[int, int] = (1, 4),
        repetitions: int = 5, alpha: float = 0.35, mixed_precision: bool = False
        ) -> list[dict[str, Any]]:
    """Measure ``cell_vs_keras``; returns a one-element list."""
    short, long = epochs
    if not 1 <= short < long:
        raise ValueError(f"epochs must be (short, long) with 1 <= short < long, got {epochs}")
    tree = make_tree(train, val, seed=4, width=SOURCE_SIDE, height=SOURCE_SIDE)
    dataset = ensure_dataset(tree, image_size)
    settings = {e: run_settings(dataset, "bench-cell",
                                _overrides(image_size, e, alpha, mixed_precision))
                for e in epochs}
    spark = job_session(settings[long], MASTER)
    sides = (f"cell_{short}", f"cell_{long}", "keras")
    out: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    probe: list[float] = []
    load = [os.getloadavg()]
    try:
        prepared = {e: prepare_run(spark, settings[e]) for e in epochs}
        cell = prepared[long].cells[0]
        ctx = prepared[long].ctx
        print(f"cell_vs_keras: run directories ready "
              f"({sum(p.seconds for p in prepared.values()):.1f}s); cell {cell.name}, "
              f"batch {ctx.train.batch_size} x {ctx.workers} replicas, "
              f"{ctx.train_images} images", flush=True)

        def measure(side: str) -> dict[str, Any]:
            if side == "keras":
                return _keras_side(spark, ctx, cell)
            return _cell_side(spark, prepared[int(side.split("_")[1])], cell)

        start = time.monotonic()
        for side in sides:
            measure(side)
        warmup = time.monotonic() - start
        workers = spark_python_workers()
        print(f"cell_vs_keras: untimed warm-up {warmup:.1f}s, Python workers {workers}",
              flush=True)
        for rep in range(repetitions):
            probe.append(available_cores())
            for side in sides[rep % 3:] + sides[:rep % 3]:
                out[side].append(measure(side))
                got = out[side][-1]
                seconds = got["train_seconds"] if side != "keras" else sum(got["fit_seconds"])
                print(f"cell_vs_keras rep {rep}: {side} {seconds:.1f}s (probe before: "
                      f"{probe[-1]} cores free)", flush=True)
    finally:
        spark.stop()
    load.append(os.getloadavg())

    images = ctx.train_images
    cells_short, cells_long, bases = out[sides[0]], out[sides[1]], out["keras"]
    extra_epochs = long - short

    def evaluation(cell_side: dict[str, Any], base: dict[str, Any], epochs: int) -> float:
        own = cell_side["own_eval_seconds"]
        return sum(own) if own else sum(base["eval_seconds"][:epochs])

    # Steady-state epochs: what the long cell spent beyond the short one, per extra epoch,
    # less that epoch's evaluation; set-up and the first epoch's tracing cancel out.
    cell_epoch = [
        (cl["train_seconds"] - evaluation(cl, b, long)
         - cs["train_seconds"] + evaluation(cs, b, short)) / extra_epochs
        for cs, cl, b in zip(cells_short, cells_long, bases, strict=True)
    ]
    keras_epoch = [statistics.mean(b["fit_seconds"][short:]) for b in bases]

    def med(values: list[float], digits: int = 2) -> float:
        return round(statistics.median(values), digits)

    parts = {
        "set_up_build_masks_rewind_compile": [b["setup_seconds"] for b in bases],
        "evaluation_after_every_epoch": [evaluation(c, b, long)
                                         for c, b in zip(cells_long, bases, strict=True)],
        "first_epoch_extra_tracing": [b["fit_seconds"][0] - k
                                      for b, k in zip(bases, keras_epoch, strict=True)],
        "training_at_the_baseline_rate": [long * k for k in keras_epoch],
        "input_path_in_steady_epochs": [long * (c - k)
                                        for c, k in zip(cell_epoch, keras_epoch, strict=True)],
    }
    parts["rest_one_off_cell_costs"] = [
        c["train_seconds"] - sum(values)
        for c, *values in zip(cells_long, *parts.values(), strict=True)
    ]
    whole = [(b["setup_seconds"] + sum(b["fit_seconds"]) + sum(b["eval_seconds"]))
             / c["train_seconds"] for b, c in zip(bases, cells_long, strict=True)]
    inputs = {
        **describe(tree),
        "image_size": image_size,
        "settings": settings_note(_overrides(image_size, long, alpha, mixed_precision))
        + f"; and train.epochs={short}",
        "cell": cell.name,
        "master": MASTER,
        "task_cpus": settings[long].grid.task_cpus,
        "tensorflow_threads": bases[0]["devices"],
        "batch_size": ctx.train.batch_size,
        "replicas": ctx.workers,
        "train_images": images,
        "deterministic": ctx.deterministic,
        "reader_workers": ctx.reader_workers,
        "figure": f"steady-state training epochs: cell = (train_seconds of the {long}-epoch "
        f"cell - train_seconds of the {short}-epoch cell - their evaluation difference) / "
        f"{extra_epochs}; baseline = mean model.fit seconds of epochs {short + 1}..{long}",
        "cell_side": "train_cells([cell], retrain=True): one grid task; train_seconds from its "
        f"result row; two run directories, train.epochs {short} and {long}",
        "baseline": "model.fit on the load_numpy arrays in memory (from_tensor_slices, "
        "shuffle, batch, repeat; the cell's steps per epoch) in a Spark task of the same "
        "session: prepare_model, the job's optimizer and loss, same batch and thread pools, "
        f"{long} epochs with evaluate_local after each",
        "evaluation_source": "the cell's own history" if cells_long[0]["own_eval_seconds"]
        else "the baseline's evaluate_local timings (same code, same worker, same repetition)",
        "cell_train_seconds": {s: [round(c["train_seconds"], 2) for c in out[s]]
                               for s in sides[:2]},
        "cell_epoch_seconds": [round(v, 2) for v in cell_epoch],
        "keras_fit_seconds": [[round(v, 2) for v in b["fit_seconds"]] for b in bases],
        "keras_eval_seconds": [[round(v, 2) for v in b["eval_seconds"]] for b in bases],
        f"where_the_{long}_epoch_cell_time_goes_median_seconds": {
            k: med(v) for k, v in parts.items()},
        "whole_cell_ratio": med(whole, 3),
        "whole_cell_ratio_meaning": "baseline set-up + fit + evaluation seconds / the "
        f"{long}-epoch cell's train_seconds: everything included",
        "reader_alone": {
            "images_per_s": med([b["reader_images"] / b["reader_seconds"] for b in bases], 1),
            "images_per_cpu_s": med([b["reader_images"] / b["reader_cpu_seconds"]
                                     for b in bases], 1),
            "what": "one shuffled pass of make_tf_dataset over the train split in the task, "
            f"workers_count={ctx.reader_workers}; CPU = all threads of the worker",
        },
        "cores_busy": {
            "cell_wave": {s: [round(c["cpu_seconds"] / c["wave_seconds"], 2) for c in out[s]]
                          for s in sides[:2]},
            "keras_fit": [round(sum(b["fit_cpu_seconds"]) / sum(b["fit_seconds"]), 2)
                          for b in bases],
            "accounting": "cell wave: CPU of this process and all descendants (JVM, workers) "
            "over the whole train_cells call; keras fit: the worker's process CPU over fit",
        },
        "python_worker_pids": {"after_warmup": workers,
                               "baseline_tasks": sorted({b["pid"] for b in bases})},
        "warmup": "untimed: both cells and the baseline once",
        "warmup_seconds": round(warmup, 1),
        "cores_available_probe": probe,
        "probe": "CPU-s per wall-s that 2 busy-looping processes got together before each "
        "repetition (2.0 = both cores free; other tenants lower it)",
        "cell_top1": {s: [c["top1"] for c in out[s]] for s in sides[:2]},
        "prepare_seconds": round(sum(p.seconds for p in prepared.values()), 1),
        "loadavg_1_5_15_before_after": [[round(v, 2) for v in row] for row in load],
    }
    return [make_result("cell_vs_keras", [images / s for s in cell_epoch],
                        [images / s for s in keras_epoch], target=0.9, better="higher",
                        unit="images/s", inputs=inputs)]


QUICK = {"train": 256, "val": 64, "repetitions": 1, "epochs": (1, 3)}

if __name__ == "__main__":
    os.chdir(ROOT)
    bench_main(run, QUICK)
