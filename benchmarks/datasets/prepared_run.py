"""A run directory ready for its grid: the dense stage trained and the level-1 masks written.

Used by the benchmarks that time grid cells (``grid_speedup``, ``cell_vs_keras``). Everything
goes through the job's public functions, as ``pipeline.experiment.job.run_prune_job`` calls
them: ``preflight``, ``RunDirectory``, ``run_dense_stage``, ``make_level_masks`` and
``RunDirectory.to_remote`` with ``model_spec``, ``workers`` and ``policy_for``. A run is kept
under ``benchmarks/scratch/grid-runs`` and reused while its settings stay the same (the run
directory is named by their hash; each stage is skipped when its marker exists).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.harness.common import WORK_DIR

LOCAL_CONF = "conf/local.yaml"


def run_settings(dataset: str, name: str, overrides: list[str]):  # noqa: ANN201
    """``conf/local.yaml`` with ``overrides``, reading ``dataset`` and writing below scratch."""
    from pipeline.config import load_config
    from pipeline.experiment.settings import PruneJobSettings

    return load_config(PruneJobSettings, LOCAL_CONF, [
        f"data.url={dataset}", f"run.output={WORK_DIR / 'grid-runs'}", f"run.name={name}",
        "run.replicates=1", *overrides,
    ])


def job_session(settings, master: str = "local[2]"):  # noqa: ANN001, ANN201
    """A SparkSession with the job's own session settings (``spark.task.cpus``)."""
    from pipeline.experiment.job import session_conf
    from pipeline.spark_session import get_spark

    cores = master.removeprefix("local[").removesuffix("]")
    conf = {**session_conf(settings), "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": cores}
    return get_spark(f"bench-{settings.run.name}", master=master, conf=conf)


@dataclass
class PreparedRun:
    run: Any  # RunDirectory
    ctx: Any  # CellContext, as the job builds it
    cells: list  # the level-1 cells of the grid, in grid order
    seconds: float  # spent preparing now (0 when everything was there)
    dense_top1: float | None


def prepare_run(spark, settings) -> PreparedRun:  # noqa: ANN001
    """Train the dense stage and write the level-1 masks (each skipped when done), then the
    cells' context exactly as the job makes it."""
    from pipeline.experiment.cells import grid_cells
    from pipeline.experiment.dense_stage import model_spec, run_dense_stage, workers
    from pipeline.experiment.mask_stage import make_level_masks, policy_for
    from pipeline.experiment.preflight import preflight
    from pipeline.experiment.run_dir import RunDirectory

    start = time.monotonic()
    facts = preflight(settings)
    RunDirectory(settings).write_settings()
    run = RunDirectory(settings, replicate=0)
    dense = run_dense_stage(spark, run, facts)
    spec = model_spec(run, facts)
    cells = [c for c in grid_cells(settings) if c.level == 1]
    for k in sorted({c.rewind_epoch for c in cells}):
        make_level_masks(run, spec, 1, k, settings.train.epochs)
    ctx = run.to_remote(facts, spec, workers(spark, run), policy_for(run).to_dict())
    return PreparedRun(run, ctx, cells, time.monotonic() - start, dense.final.get("top1"))


def settings_note(overrides: list[str]) -> str:
    """The settings of a prepared run, for a result's ``inputs``."""
    return f"{LOCAL_CONF} with {', '.join(overrides)}"
