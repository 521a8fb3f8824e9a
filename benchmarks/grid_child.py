"""Grid cells in their own process (a SparkSession's master is fixed once it starts).

``python benchmarks/grid_child.py prepare --settings FILE --result OUT`` trains the dense
stage and writes the level-1 masks of every cell of the run directory the settings name
(each skipped when already there), on ``local[2]``.

``python benchmarks/grid_child.py wave --settings FILE --master local[N] --result OUT``
deletes the run directory's ``grid/`` (so every cell is fresh), starts a SparkSession with
``master`` and the job's own session settings, warms up the Python workers (see
:func:`warm_workers`), then times ``pipeline.experiment.grid.run_wave`` over every cell of
the settings' level 1, and writes ``{"seconds", "cells", "rows", ...}`` to ``OUT``.

``FILE`` is JSON: ``{"config": "conf/local.yaml", "overrides": ["key=value", ...]}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

WARMUP_HOLD_SECONDS = 2.0  # keeps warm-up tasks overlapping, so each lands in its own worker


def load_settings(path: str):  # noqa: ANN201 - PruneJobSettings
    from pipeline.config import load_config
    from pipeline.experiment.settings import PruneJobSettings

    spec = json.loads(Path(path).read_text())
    return load_config(PruneJobSettings, spec["config"], spec["overrides"])


def level_one_cells(settings) -> list:  # noqa: ANN001
    from pipeline.experiment.cells import grid_cells

    return [c for c in grid_cells(settings) if c.level == 1]


def spark_for(settings, master: str):  # noqa: ANN001, ANN201
    from pipeline.experiment.job import session_conf
    from pipeline.spark_session import get_spark

    conf = {**session_conf(settings), "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": master.removeprefix("local[").removesuffix("]")}
    return get_spark("bench-grid", master=master, conf=conf)


def prepare(settings) -> dict[str, Any]:  # noqa: ANN001
    from pipeline.experiment.dense_stage import model_spec, run_dense_stage
    from pipeline.experiment.mask_stage import make_level_masks
    from pipeline.experiment.preflight import preflight
    from pipeline.experiment.run_dir import RunDirectory

    facts = preflight(settings)
    run = RunDirectory(settings)
    run.write_settings()
    spark = spark_for(settings, "local[2]")
    try:
        start = time.monotonic()
        dense = run_dense_stage(spark, run, facts)
        spec = model_spec(run, facts)
        for cell in level_one_cells(settings):
            make_level_masks(run, spec, 1, cell.rewind_epoch, settings.train.epochs)
    finally:
        spark.stop()
    return {"run_url": run.url, "seconds": time.monotonic() - start,
            "dense_seconds": dense.seconds, "dense_top1": dense.final.get("top1")}


def _warm_task(_: int, spec) -> int:  # noqa: ANN001
    """What a Python worker of a long grid already has: TensorFlow and Keras imported and
    initialised, the model code loaded, one small model trained and evaluated."""
    import numpy as np

    from pipeline.train.devices import configure_task_devices

    configure_task_devices()
    import keras

    import pipeline.tickets  # noqa: F401 - the masked layers' module

    spec.build()  # the model code and the masked layers, built once (not trained)
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    tiny.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = np.zeros((8, 4), np.float32), np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    tiny.fit(x, y, batch_size=4, epochs=1, verbose=0)
    tiny.predict(x, verbose=0)
    keras.backend.clear_session()
    time.sleep(WARMUP_HOLD_SECONDS)
    return os.getpid()


def warm_workers(spark, spec, slots: int) -> dict[str, Any]:  # noqa: ANN001
    """One overlapping task per slot, so every slot's Python worker starts warm."""
    import functools

    start = time.monotonic()
    pids = spark.sparkContext.parallelize(range(slots), slots).map(
        functools.partial(_warm_task, spec=spec)).collect()
    return {"warmup_seconds": time.monotonic() - start, "warm_workers": len(set(pids))}


def wave(settings, master: str) -> dict[str, Any]:  # noqa: ANN001
    from cpu_usage import cpu_seconds

    from pipeline.experiment.dense_stage import model_spec
    from pipeline.experiment.grid import run_wave
    from pipeline.experiment.mask_stage import policy_for
    from pipeline.experiment.preflight import preflight
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.experiment.run_layout import GRID_DIR
    from pipeline.logs import Progress
    from pipeline.spark_session import default_parallelism

    facts = preflight(settings)
    run = RunDirectory(settings)
    if not run.is_done("dense"):
        raise RuntimeError(f"{run.url}: the dense stage is not done; run 'prepare' first")
    run.store.delete(GRID_DIR)  # the masks are reused
    spec = model_spec(run, facts)
    # As pipeline.experiment.job.run_prune_job builds it, except that the cells' batch comes
    # from the workers the dense stage actually had (recorded in its marker), not from this
    # session's slots: the 1-slot and 2-slot waves must train the same cells.
    dense_workers = int(run.stage_info("dense").get("workers", 2))
    ctx = run.to_remote(facts, spec, dense_workers, policy_for(run).to_dict())
    cells = level_one_cells(settings)
    started = time.monotonic()
    spark = spark_for(settings, master)
    startup = time.monotonic() - started
    try:
        slots = default_parallelism(spark)
        warm = warm_workers(spark, ctx.spec, slots)
        progress = Progress("grid cell", len(cells), logging.getLogger("bench.grid"))
        cpu, start = cpu_seconds(), time.monotonic()
        rows = run_wave(spark, run, ctx, cells, progress)
        seconds = time.monotonic() - start
        cpu = cpu_seconds() - cpu
    finally:
        spark.stop()
    failed = {c.name: (r.get("error") or "")[-400:] for c, r in rows.items()
              if r.get("status") != "ok"}
    if failed:
        raise RuntimeError(f"grid cells failed: {failed}")
    return {
        "master": master,
        "slots": slots,
        "seconds": seconds,
        "cores_busy": cpu / seconds,
        "cells": [c.name for c in cells],
        "cell_train_seconds": {c.name: rows[c]["train_seconds"] for c in cells},
        "cell_batch_size": ctx.batch_size,
        "session_startup_seconds": startup,
        **warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("prepare", "wave"))
    parser.add_argument("--settings", required=True)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    settings = load_settings(args.settings)
    result = prepare(settings) if args.mode == "prepare" else wave(settings, args.master)
    Path(args.result).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
