"""The main job end to end: preflight → dense → masks and grid → results and report.

Every stage writes below the run directory and is skipped when its output is complete, so
rerunning the same command after a crash resumes where the run stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pipeline.config import to_dict
from pipeline.experiment.cells import Cell
from pipeline.experiment.dense_stage import model_spec, run_dense_stage, workers
from pipeline.experiment.grid import run_grid
from pipeline.experiment.mask_stage import policy_for
from pipeline.experiment.preflight import preflight
from pipeline.experiment.run_dir import RunDirectory, stage_timer
from pipeline.experiment.run_layout import TIMINGS
from pipeline.experiment.settings import PruneJobSettings
from pipeline.report.result_row import ResultRow
from pipeline.tickets.controls import TICKET

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    run_url: str
    report_url: str
    rows: list[dict[str, Any]]
    timings: dict[str, float]


def _sparsest_ticket_csv(run: RunDirectory, rows: list[dict[str, Any]]) -> str | None:
    tickets = [r for r in rows if r.get("status") == "ok" and r.get("control") == TICKET
               and r.get("level", 0) > 0]
    if not tickets:
        return None
    best = min(tickets, key=lambda r: r["weights_remaining_prunable"])
    cell = Cell(best["level"], best["rewind_epoch"])
    return run.cell_dir(cell).read_text(run.CELL_SPARSITY)


def session_conf(settings: PruneJobSettings) -> dict[str, str]:
    return {"spark.task.cpus": str(settings.grid.task_cpus)}


def run_prune_job(settings: PruneJobSettings, spark=None) -> JobOutcome:  # noqa: ANN001
    """Run (or resume) the whole job; raises PreflightError before any work on bad input."""
    from pipeline.report import write_report
    from pipeline.spark_session import get_spark

    total_start = time.monotonic()
    facts = preflight(settings)
    run = RunDirectory(settings)
    log.info("run directory %s", run.url)
    run.write_settings()
    spark = spark or get_spark("prune-imagenet", master=settings.run.master,
                               conf=session_conf(settings))

    dense = run_dense_stage(spark, run, facts)
    spec = model_spec(run, facts)
    ctx = run.to_remote(facts, spec, workers(spark, run), policy_for(run).to_dict())
    previous = run.stage_info("grid")
    with stage_timer() as timer:
        cell_rows, mask_seconds = run_grid(spark, run, ctx, spec, settings.train.epochs)
    failed = [r["cell"] for r in cell_rows if r.get("status") != "ok"]
    if not failed:
        run.mark_done("grid", {"seconds": previous.get("seconds", timer["seconds"]),
                               "mask_seconds": previous.get("mask_seconds", mask_seconds)})
    else:
        log.warning("grid: %d cell(s) failed: %s; rerun the same command to retry them",
                    len(failed), ", ".join(failed))

    rows = [ResultRow.dense(settings.run.seed, dense.history).to_dict()] + [
        {k: v for k, v in r.items() if k != "history"} for r in cell_rows
    ]
    run.store.write_json([r.get("history") for r in cell_rows], *run.histories())
    grid_info = run.stage_info("grid") or {"seconds": timer["seconds"],
                                           "mask_seconds": mask_seconds}
    timings = {
        "dense": round(dense.seconds, 3),
        "masks": round(grid_info.get("mask_seconds", 0.0), 3),
        "grid": round(grid_info.get("seconds", 0.0) - grid_info.get("mask_seconds", 0.0), 3),
    }
    with stage_timer() as report_timer:
        report_url = write_report(run.store, rows, to_dict(settings), timings,
                                  _sparsest_ticket_csv(run, rows))
    timings["report"] = report_timer["seconds"]
    timings["total (this invocation)"] = round(time.monotonic() - total_start, 3)
    run.store.write_json(timings, TIMINGS)
    log.info("report %s", report_url)
    return JobOutcome(run.url, report_url, rows, timings)

