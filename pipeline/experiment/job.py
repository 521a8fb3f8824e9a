"""The main job end to end: preflight → holdout → dense → masks and grid → stability
(when enabled) → results, report.

Every stage writes below the run directory and is skipped when its output is complete, so
rerunning the same command after a crash resumes where the run stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.config import to_dict
from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.cells import Cell
from pipeline.experiment.dense_stage import (
    dense_final_epoch,
    dense_history,
    model_spec,
    run_dense_stage,
    workers,
)
from pipeline.experiment.grid import Replicate, run_grid
from pipeline.experiment.holdout_stage import with_holdout
from pipeline.experiment.mask_stage import policy_for
from pipeline.experiment.micro_batch import fit_micro_batch
from pipeline.experiment.preflight import DatasetFacts, PreflightError, preflight
from pipeline.experiment.run_dir import RunDirectory, stage_timer
from pipeline.experiment.run_layout import TIMINGS
from pipeline.experiment.settings import PruneJobSettings
from pipeline.report.figures import LineNames
from pipeline.report.result_row import ResultRow
from pipeline.report.writer import HISTORY_COLUMNS, HOLDOUT_HISTORY_COLUMNS
from pipeline.tickets.controls import TICKET
from pipeline.tracking.mlflow_runs import NoTracking, start_tracking

log = logging.getLogger(__name__)


@dataclass
class JobOutcome:
    run_url: str
    report_url: str
    rows: list[dict[str, Any]]
    timings: dict[str, float]


def _sparsest_ticket_csv(run: RunDirectory, rows: list[dict[str, Any]]) -> str | None:
    """The per-layer sparsity of the sparsest ticket of ``run`` (one replicate)."""
    tickets = [r for r in rows if r.get("status") == "ok" and r.get("control") == TICKET
               and r.get("level", 0) > 0 and r.get("replicate", 0) == run.replicate_index]
    if not tickets:
        return None
    best = min(tickets, key=lambda r: r["weights_remaining_prunable"])
    cell = Cell(best["level"], best["rewind_epoch"])
    return run.cell_dir(cell).read_text(run.CELL_SPARSITY)


def session_conf(settings: PruneJobSettings) -> dict[str, str]:
    return {"spark.task.cpus": str(settings.grid.task_cpus)}


@dataclass(frozen=True)
class Study:
    """What a job built on the main job's stages changes in them (the main job: nothing).

    ``prepare`` runs for each replicate before its dense stage and returns the data that
    replicate trains on; ``context`` adjusts what its cells receive; ``cells`` replaces the
    grid's; ``extra_rows(spark, rows)`` adds rows (read from elsewhere, or of more grids)
    to the table; ``preface`` is a
    report section placed before the findings; ``line_names`` names the figures' lines.
    """

    app_name: str = "prune-imagenet"
    prepare: Callable[[RunDirectory, DatasetFacts], DatasetFacts] | None = None
    context: Callable[[CellContext], CellContext] | None = None
    cells: list[Cell] | None = None
    extra_rows: Callable[[Any, list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    preface: Callable[[list[dict[str, Any]]], str] | None = None
    line_names: LineNames | None = None  # the figures' legend


def run_prune_job(settings: PruneJobSettings, spark=None) -> JobOutcome:  # noqa: ANN001
    """Run (or resume) the whole job; raises PreflightError before any work on bad input."""
    facts = preflight(settings)
    if not settings.early_bird.enabled:
        return run_study(settings, facts, Study(), spark)
    from pipeline.early_bird.compare import compare_rows
    from pipeline.early_bird.summary import early_bird_markdown

    def preface(rows: list[dict[str, Any]]) -> str:
        run = RunDirectory(settings)
        return early_bird_markdown(run, run.replicates(), rows)

    def extra_rows(spark, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: ANN001
        run = RunDirectory(settings)  # the early-bird twins train on the run's own splits
        return compare_rows(spark, run, with_holdout(run, settings, facts, spark))

    study = Study(preface=preface, extra_rows=extra_rows if settings.early_bird.compare else None)
    return run_study(settings, facts, study, spark)


def check_rewinds_after_stop(run: RunDirectory) -> None:
    """A rewind point after the early-bird stop has no weights to rewind to."""
    final = dense_final_epoch(run)
    late = [k for k in run.settings.rewind.epochs if k > final]
    if late:
        raise PreflightError(f"rewind.epochs: {late} come after the early-bird stop at epoch "
                             f"{final} (replicate {run.replicate_index}); lower them or raise "
                             "early_bird.patience")


def run_study(settings: PruneJobSettings, facts: DatasetFacts, study: Study,
              spark=None) -> JobOutcome:  # noqa: ANN001
    """The stages of a run whose preflight passed: dense, masks and grid, report; under the
    run directory's lease (one driver at a time, :mod:`pipeline.experiment.run_lease`)."""
    from pipeline.experiment.run_lease import RunLease
    from pipeline.spark_session import default_parallelism, get_spark

    total_start = time.monotonic()
    spark = spark or get_spark(study.app_name, master=settings.run.master,
                               conf=session_conf(settings))
    fit_micro_batch(settings, facts.num_classes, spark, default_parallelism(spark))
    run = RunDirectory(settings)
    log.info("run directory %s (%d replicate(s))", run.url, settings.run.replicates)
    with RunLease(run.store, settings.run.lease_timeout,
                  app_id=spark.sparkContext.applicationId):
        tracker = start_tracking(settings.tracking.mlflow_uri, settings.tracking.experiment,
                                 run.url, settings)
        try:
            outcome = _run_stages(settings, facts, study, spark, run, total_start, tracker)
        except BaseException:
            tracker.finish(run.store, failed=True)
            raise
        tracker.finish(run.store, failed=any(r.get("status") != "ok" for r in outcome.rows))
        return outcome


def _run_stages(settings: PruneJobSettings, facts: DatasetFacts, study: Study, spark,  # noqa: ANN001
                run: RunDirectory, total_start: float, tracker: NoTracking) -> JobOutcome:
    from pipeline.experiment.provenance import (
        provenance_columns,
        provenance_markdown,
        verify_run,
    )
    from pipeline.report import write_report
    from pipeline.tickets.flops import count_flops

    # data.holdout_per_class: every model below trains on train less the holdout
    facts = with_holdout(run, settings, facts, spark)
    run.write_settings()

    replicates, dense_rows, dense_seconds = [], [], 0.0
    dense_flops = count_flops(model_spec(run, facts).build()).dense_flops
    for rep_run in run.replicates():
        if settings.run.replicates > 1:
            log.info("replicate %d of %d: seed %d", rep_run.replicate_index + 1,
                     settings.run.replicates, rep_run.settings.run.seed)
        rep_facts = study.prepare(rep_run, facts) if study.prepare else facts
        dense = run_dense_stage(spark, rep_run, rep_facts)
        dense_seconds += dense.seconds
        dense_rows.append(ResultRow.dense(rep_run.settings.run.seed, dense.history,
                                          replicate=rep_run.replicate_index,
                                          dense_flops=dense_flops).to_dict())
        check_rewinds_after_stop(rep_run)
        ctx = rep_run.to_remote(rep_facts, model_spec(rep_run, rep_facts),
                                workers(spark, rep_run), policy_for(rep_run).to_dict())
        replicates.append(Replicate(rep_run, study.context(ctx) if study.context else ctx))
        if tracker.enabled:
            tracker.log_rows(dense_rows[-1:], history_frame(replicates[-1:], [], settings))
    spec = model_spec(run, facts)
    previous = [r.run.stage_info("grid") for r in replicates]
    with stage_timer() as timer:
        cell_rows, mask_seconds = run_grid(spark, replicates, spec, cells=study.cells)
    failed = [f"{r['cell']} (replicate {r.get('replicate', 0)})" for r in cell_rows
              if r.get("status") != "ok"]
    for rep, before in zip(replicates, previous, strict=True):
        mine = [r for r in cell_rows if r.get("replicate", 0) == rep.index]
        if all(r.get("status") == "ok" for r in mine):
            rep.run.mark_done("grid", {"seconds": before.get("seconds", timer["seconds"]),
                                       "mask_seconds": before.get("mask_seconds",
                                                                  mask_seconds)})
    if failed:
        log.warning("grid: %d cell(s) failed: %s; rerun the same command to retry them",
                    len(failed), ", ".join(failed))

    rows = dense_rows + [{**{k: v for k, v in r.items() if k not in ("history", "provenance")},
                          **provenance_columns(r)} for r in cell_rows]
    if study.extra_rows:
        rows += study.extra_rows(spark, rows)
    for rep in replicates:
        mine = [r for r in cell_rows if r.get("replicate", 0) == rep.index]
        rep.run.store.write_json([r.get("history") for r in mine], *rep.run.histories())
    history = history_frame(replicates, cell_rows, settings)
    tracker.log_rows(rows, history)
    timings = {
        "dense": round(dense_seconds, 3),
        "masks": round(mask_seconds, 3),
        "grid": round(timer["seconds"] - mask_seconds, 3),
    }
    sections = [study.preface(rows)] if study.preface else []
    if settings.stability.enabled:
        from pipeline.experiment.stability_stage import run_stability_stage

        with stage_timer() as stability_timer:
            sections.append(run_stability_stage(spark, run, replicates, spec).markdown)
        timings["stability"] = round(stability_timer["seconds"], 3)
    problems = verify_run(run)
    for line in problems:
        log.warning("provenance: %s", line)
    sections.append(provenance_markdown(problems))
    with stage_timer() as report_timer:
        report_url = write_report(run.store, rows, to_dict(settings), timings,
                                  _sparsest_ticket_csv(replicates[0].run, rows), history=history,
                                  preface="\n".join(sections) if sections else None,
                                  line_names=study.line_names)
    timings["report"] = report_timer["seconds"]
    timings["total (this invocation)"] = round(time.monotonic() - total_start, 3)
    run.store.write_json(timings, TIMINGS)
    log.info("report %s", report_url)
    return JobOutcome(run.url, report_url, rows, timings)


def history_frame(replicates: list[Replicate], cell_rows: list[dict[str, Any]],
                  settings: PruneJobSettings) -> pd.DataFrame:
    """Every model's per-epoch history in long format (``HISTORY_COLUMNS``): the dense stage
    of each replicate (its learning rate from the schedule at the epoch's first step) and
    every cell."""
    from pipeline.train.optimizers import make_schedule

    records = []
    for rep in replicates:
        steps = rep.ctx.procedure().steps_per_epoch
        schedule = make_schedule(settings.train, steps)
        for entry in dense_history(rep.run, dense_final_epoch(rep.run)):
            first = entry.get("first_step", (entry["epoch"] - 1) * steps)
            records.append({**entry, "replicate": rep.index, "cell": "dense",
                            "learning_rate": float(schedule(first))})
    for row in cell_rows:
        for entry in row.get("history") or []:
            records.append({**entry, "replicate": row.get("replicate", 0), "cell": row["cell"]})
    holdout = [c for c in HOLDOUT_HISTORY_COLUMNS if any(c in r for r in records)]
    frame = pd.DataFrame.from_records(records, columns=[*HISTORY_COLUMNS, *holdout])
    return frame.astype({"replicate": "int64", "epoch": "int64", "cell": "string"})
