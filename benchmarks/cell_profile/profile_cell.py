"""Where one LeNet-300-100 (or Conv-4) cell of ``make reproduce`` spends its time (a profile).

The run: ``conf/lenet_digits.yaml`` (the reproduction's LeNet: 16×16 gray digits, Adam,
batch 60, 12 epochs, one worker, the holdout) with one pruning level, rewind point 0 and no
controls, on the reproduction's own data (the gray digits sample, ingested at 16×16), kept
under ``benchmarks/scratch/cell-profile``. The cell ``L1-k0-none`` is trained by
``train_in_task`` in this process, as a Spark task's Python worker would: first in a fresh
process (``cold``: the model is built and its steps traced), then ``warm`` (the worker's
model cache hit, as for every later cell of a grid wave), each under ``cProfile``.

The phases are cumulative times of the functions that make them up, so they nest: the
rows under "training" are inside it. A Spark wave adds its own job set-up per cell, measured
as the wave's wall time less the cell's ``train_seconds`` (``spark wave overhead``).

    python -m benchmarks.cell_profile.profile_cell [--warm N] [--config conf/conv4_digits.yaml]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

from benchmarks.harness.common import WORK_DIR

OUT = WORK_DIR / "cell-profile"
# (label, module file suffix, function name, depth for indentation)
PHASES = (
    ("set-up: compiled model (build, compile, optimizer)", "train/in_process.py",
     "compiled_model", 0),
    ("set-up: masks, rewind, control", "experiment/cell_run.py", "prepare_model", 0),
    ("set-up: optimizer start state", "experiment/cell_run.py", "start_state", 0),
    ("training: epochs", "train/in_process.py", "train_epoch", 0),
    ("read and decode the shares", "train/in_process.py", "_read", 1),
    ("train steps (Keras fit, incl. tracing)", "train/local_sgd.py", "one_pass", 1),
    ("round weights to/from numpy", "train/variable_io.py", "get_weights", 1),
    ("", "train/variable_io.py", "set_weights", 1),
    ("optimizer state to/from numpy", "train/optimizer_state.py", "read_state", 1),
    ("", "train/optimizer_state.py", "load_state", 1),
    ("averaging the round", "train/local_sgd.py", "average_round", 1),
    ("evaluation (val and holdout, every epoch)", "train/evaluation.py", "evaluate_local", 0),
    ("writes: result, weights, masks, ticket", "experiment/cell_run.py", "finish_cell", 0),
    ("weights checkpoint", "train/checkpoints.py", "save_checkpoint", 1),
    ("ticket", "tickets/storage.py", "save_ticket", 1),
    ("sparsity report", "tickets/sparsity.py", "sparsity_report", 1),
    ("TensorBoard events", "pipeline/tensorboard_events.py", "write_scalars", 1),
    ("the ticket invariant (zeros)", "experiment/cell_run.py", "check_zeros", 1),
)


def _settings(dataset: str, config: str):  # noqa: ANN202
    from pipeline.config import load_config
    from pipeline.experiment.settings import PruneJobSettings

    return load_config(PruneJobSettings, config, [
        f"data.url={dataset}", f"run.output={OUT / 'runs'}", "run.replicates=1",
        "prune.levels=1", "rewind.epochs=[0]", "grid.controls=[]",
    ])


def _dataset(spark) -> str:  # noqa: ANN001
    from pipeline.data.ingest import ingest_imagenet
    from pipeline.data.sample import make_sample_imagenet
    from pipeline.data.settings import IngestSettings

    out = OUT / "dataset"
    if not (out / "_COMPLETE").exists():
        make_sample_imagenet(str(OUT / "sample"), train_per_class=140, val_per_class=None,
                             size=16, style="gray", shuffle=True)
        ingest_imagenet(str(OUT / "sample"), str(out), IngestSettings(image_size=16),
                        spark=spark, overwrite=True)
    return str(out)


def _phases(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (path, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for _label, suffix, func, _ in PHASES:
            if name == func and path.endswith(suffix):
                key = f"{suffix}:{func}"
                totals[key] = max(totals.get(key, 0.0), cumulative)
    return totals


def _train(ctx, cell) -> tuple[float, dict[str, float], dict[str, Any]]:  # noqa: ANN001
    from pipeline.experiment.cell_run import train_in_task

    profiler = cProfile.Profile()
    start = time.monotonic()
    profiler.enable()
    row = train_in_task(ctx, cell)
    profiler.disable()
    wall = time.monotonic() - start
    return wall, _phases(pstats.Stats(profiler)), row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=2, help="warm cells after the cold one")
    parser.add_argument("--config", default="conf/lenet_digits.yaml",
                        help="a study of make reproduce (conf/conv4_digits.yaml: Conv-4)")
    args = parser.parse_args()
    from benchmarks.datasets.prepared_run import job_session, prepare_run
    from pipeline.experiment.grid import train_cells

    OUT.mkdir(parents=True, exist_ok=True)
    bootstrap = job_session(_settings("unused", args.config))
    settings = _settings(_dataset(bootstrap), args.config)
    prepared = prepare_run(bootstrap, settings)
    cell = next(c for c in prepared.cells if c.control == "none")
    runs = [("cold", *_train(prepared.ctx, cell))]
    runs += [(f"warm {i + 1}", *_train(prepared.ctx, cell)) for i in range(args.warm)]
    start = time.monotonic()
    row = train_cells(bootstrap, prepared.run, prepared.ctx, [cell], retrain=True)[cell]
    wave = time.monotonic() - start
    epochs = len(runs[0][3]["history"])
    print(f"\n{settings.model.name} ({args.config}) cell {cell.name}: {epochs} epochs of "
          f"{prepared.ctx.procedure().steps_per_epoch} steps, batch {settings.train.batch_size}")
    header = f"{'phase':<52}" + "".join(f"{name:>10}" for name, *_ in runs)
    print(header)
    print("-" * len(header))
    for label, suffix, func, depth in PHASES:
        key = f"{suffix}:{func}"
        name = ("  " * depth) + (label or f"  ({func})")
        print(f"{name:<52}" + "".join(f"{phases.get(key, 0.0):>10.3f}"
                                       for _, _, phases, _ in runs))
    print(f"{'the cell, in all (train_in_task)':<52}"
          + "".join(f"{wall:>10.3f}" for _, wall, _, _ in runs))
    print(f"\nthe same cell as a one-task Spark wave (warm worker unless the first): "
          f"{wave:.3f} s wall, train_seconds {row['train_seconds']:.3f} s, "
          f"spark wave overhead {wave - row['train_seconds']:.3f} s")


if __name__ == "__main__":
    main()
