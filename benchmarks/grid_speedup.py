"""Grid cells as Spark tasks: wall time of one wave on 1 executor slot ÷ on 2 slots.

Run directory (prepared once, untimed, on ``local[2]``, and kept under
``benchmarks/scratch/grid-runs`` until the settings change): ``conf/local.yaml`` with the data set
of ``imagenet_like.make_tree`` at 80×80 ingested at 32×32, one dense epoch, one pruning level,
rewind points ``rewind`` and controls ``controls``, so level 1 has K = ``len(rewind) ×
(1 + len(controls))`` cells. ``grid_child.py prepare`` trains the dense stage and writes the
level-1 masks (``run_dense_stage``, ``make_level_masks``).

* ``grid_speedup``: cells per minute of ``pipeline.experiment.grid.run_wave`` over the K
  level-1 cells with ``local[2]`` ÷ with ``local[1]`` (= wall time on 1 slot ÷ on 2 slots).
  Each wave runs in a fresh process (``grid_child.py wave``; the master cannot change within a
  process) with the job's session settings (``spark.task.cpus`` 1), after deleting the run's
  ``grid/`` so every cell trains from scratch. Before the timed wave each slot's Python worker
  is warmed up, as it is after the first cells of a long grid: one overlapping task per slot
  imports TensorFlow and the project, builds the masked model and fits and evaluates a tiny
  model (untimed). Each cell still builds, traces and trains its own model, as in a real
  grid (``train_in_task`` clears the Keras session per cell). SparkSession start-up is not
  timed. Repetitions alternate the order. Higher is better.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import BENCH_DIR, WORK_DIR, bench_main, make_result
from cpu_usage import available_cores
from imagenet_like import describe, ensure_dataset, make_tree

IMAGE_SIZE = 32
SOURCE_SIDE = 80
LOCAL_CONF = "conf/local.yaml"


def _child(mode: str, settings_file: Path, master: str = "local[2]") -> dict[str, Any]:
    result = WORK_DIR / f"grid-child-{mode}.result.json"
    cmd = [sys.executable, str(BENCH_DIR / "grid_child.py"), mode, "--settings",
           str(settings_file), "--master", master, "--result", str(result)]
    subprocess.run(cmd, check=True, cwd=BENCH_DIR.parent)
    out = json.loads(result.read_text())
    result.unlink()
    return out


def run(train: int = 600, val: int = 100, model: str = "conv4", epochs: int = 1,
        rewind: tuple[int, ...] = (0, 1), controls: tuple[str, ...] = ("reinit",),
        repetitions: int = 3) -> list[dict[str, Any]]:
    """Measure ``grid_speedup``; returns a one-element list."""
    tree = make_tree(train, val, seed=3, width=SOURCE_SIDE, height=SOURCE_SIDE)
    dataset = ensure_dataset(tree, IMAGE_SIZE)
    overrides = [
        f"data.url={dataset}",
        f"run.output={WORK_DIR / 'grid-runs'}",
        "run.name=bench-grid",
        f"model.name={model}",
        f"model.image_size={IMAGE_SIZE}",
        f"train.epochs={epochs}",
        "prune.levels=1",
        f"rewind.epochs=[{', '.join(str(k) for k in rewind)}]",
        f"grid.controls=[{', '.join(controls)}]",
    ]
    settings_file = WORK_DIR / "grid-settings.json"
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps({"config": LOCAL_CONF, "overrides": overrides}))
    prepared = _child("prepare", settings_file)
    print(f"grid_speedup: run directory {prepared['run_url']} prepared "
          f"({prepared['seconds']:.1f}s)", flush=True)

    masters = ["local[1]", "local[2]"]
    waves: dict[str, list[dict[str, Any]]] = {m: [] for m in masters}
    load = [os.getloadavg()]
    probe: dict[str, list[float]] = {m: [] for m in masters}
    for rep in range(repetitions):
        for master in masters if rep % 2 == 0 else reversed(masters):
            probe[master].append(available_cores())
            waves[master].append(_child("wave", settings_file, master))
            wave = waves[master][-1]
            print(f"grid_speedup rep {rep}: {master} {len(wave['cells'])} cells in "
                  f"{wave['seconds']:.1f}s, {wave['cores_busy']:.2f} cores busy "
                  f"(probe before: {probe[master][-1]} cores free)", flush=True)
    load.append(os.getloadavg())
    cells = waves["local[1]"][0]["cells"]
    per_minute = {m: [60 * len(cells) / w["seconds"] for w in runs] for m, runs in waves.items()}
    inputs = {
        **describe(tree),
        "image_size": IMAGE_SIZE,
        "settings": f"{LOCAL_CONF} with " + ", ".join(o for o in overrides
                                                      if not o.startswith(("data.", "run."))),
        "cells": cells,
        "k": len(cells),
        "wave_seconds": {m: [round(w["seconds"], 2) for w in runs] for m, runs in waves.items()},
        "cores_busy": {m: [round(w["cores_busy"], 2) for w in runs] for m, runs in waves.items()},
        "cores_available_probe_before": probe,
        "probe": "CPU-s per wall-s that 2 busy-looping processes got together just before the "
        "wave (2.0 = both cores free; other tenants lower it)",
        "cpu_accounting": "cores busy = user+system CPU of the wave process and all its "
        "descendants (JVM, Python workers) ÷ wave wall time",
        "cell_batch_size": waves["local[1]"][0].get("cell_batch_size"),
        "cell_train_seconds_median": {
            m: {c: round(statistics.median(w["cell_train_seconds"][c] for w in runs), 2)
                for c in cells}
            for m, runs in waves.items()
        },
        "warmup": "untimed, per wave process: one overlapping task per slot imports "
        "TensorFlow and the project, builds the masked model, fits and evaluates a tiny model",
        "warmup_seconds": {m: [round(w["warmup_seconds"], 2) for w in runs]
                           for m, runs in waves.items()},
        "warm_workers": {m: [w["warm_workers"] for w in runs] for m, runs in waves.items()},
        "timing": "run_wave wall time; SparkSession start-up, warm-up and grid/ deletion "
        "excluded",
        "prepare": {k: prepared[k] for k in ("seconds", "dense_seconds")},
        "loadavg_1_5_15_before_after": [[round(v, 2) for v in row] for row in load],
    }
    return [make_result("grid_speedup", per_minute["local[2]"], per_minute["local[1]"],
                        target=1.8, better="higher", unit="cells/min", inputs=inputs)]


QUICK = {"train": 200, "val": 40, "repetitions": 1}

if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    bench_main(run, QUICK)
