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
from pipeline.experiment.cell_run import CellContext, cell_store
from pipeline.experiment.cells import Cell
from pipeline.experiment.dense_stage import DenseOutcome, model_spec, run_dense_stage, workers
from pipeline.experiment.grid import run_grid
from pipeline.experiment.mask_stage import policy_for
from pipeline.experiment.preflight import preflight
from pipeline.experiment.run_dir import RunDirectory, stage_timer
from pipeline.experiment.settings import PruneJobSettings

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    run_url: str
    report_url: str
    rows: list[dict[str, Any]]
    timings: dict[str, float]


def dense_row(settings: PruneJobSettings, dense: DenseOutcome) -> dict[str, Any]:
    from pipeline.experiment.cell_run import best_epoch

    final = dense.final
    return {
        "cell": "dense", "level": 0, "rewind_epoch": None, "control": "none",
        "seed": settings.run.seed, "weights_remaining_prunable": 1.0,
        "weights_remaining_overall": 1.0, "top1": final.get("top1"), "top5": final.get("top5"),
        "val_loss": final.get("val_loss"), "best_epoch": best_epoch(dense.history),
        "train_seconds": round(sum(h.get("seconds", 0.0) for h in dense.history), 3),
        "status": "ok", "error": None, "epochs": len(dense.history),
    }


def _sparsest_ticket_csv(run: RunDirectory, ctx: CellContext,
                         rows: list[dict[str, Any]]) -> str | None:
    tickets = [r for r in rows if r.get("status") == "ok" and r.get("control") == "none"
               and r.get("level", 0) > 0]
    if not tickets:
        return None
    best = min(tickets, key=lambda r: r["weights_remaining_prunable"])
    cell = Cell(best["level"], best["rewind_epoch"], "none")
    return cell_store(ctx, cell).read_text("sparsity.csv")


def cell_batch_size(settings: PruneJobSettings, dense_workers: int) -> int:
    """A grid task's batch: by default the dense model's global batch (each Elephas step
    averages ``dense_workers`` batches), so a ticket takes as many optimizer steps per epoch,
    under the same schedule, as the dense model it is compared with."""
    return settings.grid.batch_size or settings.train.batch_size * dense_workers


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
    ctx = CellContext(
        run_url=run.url, train_url=facts.train_url, val_url=facts.val_url,
        spec=spec.with_masks(), num_classes=facts.num_classes, train_images=facts.train_rows,
        train=settings.train, batch_size=cell_batch_size(settings, workers(spark, run)),
        policy=policy_for(run).to_dict(), run_seed=settings.run.seed,
        reader_workers=settings.grid.reader_workers, eval_batch_size=settings.eval.batch_size,
        settings=to_dict(settings), deterministic=settings.run.deterministic,
    )
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

    rows = [dense_row(settings, dense)] + [
        {k: v for k, v in r.items() if k != "history"} for r in cell_rows
    ]
    run.store.write_json([r.get("history") for r in cell_rows], "grid", "histories.json")
    grid_info = run.stage_info("grid") or {"seconds": timer["seconds"],
                                           "mask_seconds": mask_seconds}
    timings = {
        "dense": round(dense.seconds, 3),
        "masks": round(grid_info.get("mask_seconds", 0.0), 3),
        "grid": round(grid_info.get("seconds", 0.0) - grid_info.get("mask_seconds", 0.0), 3),
    }
    with stage_timer() as report_timer:
        report_url = write_report(run.store, rows, to_dict(settings), timings,
                                  _sparsest_ticket_csv(run, ctx, rows))
    timings["report"] = report_timer["seconds"]
    timings["total (this invocation)"] = round(time.monotonic() - total_start, 3)
    run.store.write_json(timings, "timings.json")
    log.info("report %s", report_url)
    return JobOutcome(run.url, report_url, rows, timings)

