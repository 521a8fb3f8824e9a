"""Stage 3: the ticket grid, wave by wave, each cell its own Spark job of one task.

Cells of a wave are submitted from driver threads as separate one-task Spark jobs, so they
run in parallel on every free task slot and each finished cell is reported at once (with
an ETA) instead of when the slowest one ends. Finished cells (``result.json`` present) are
never retrained. A cell whose Python code fails is retried up to ``grid.max_failures``
times and then recorded as failed with its error, without discarding the others; a task
lost with its executor is retried by Spark itself.
"""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.cell_run import (
    failure_row,
    finished_result,
    run_cell_task,
)
from pipeline.experiment.cells import Cell, grid_cells, waves
from pipeline.experiment.mask_stage import make_level_masks
from pipeline.experiment.run_dir import RunDirectory
from pipeline.logs import Progress
from pipeline.models.spec import ModelSpec
from pipeline.tickets.controls import TICKET

log = logging.getLogger(__name__)


def _run_one(sc, cell: Cell, ctx: CellContext) -> dict[str, Any]:  # noqa: ANN001
    sc.setJobDescription(f"grid cell {cell.name}")
    task = functools.partial(run_cell_task, ctx=ctx)
    return sc.parallelize([cell], 1).map(task).collect()[0]


def _run_data_parallel(spark, cell: Cell, ctx: CellContext, run: RunDirectory):  # noqa: ANN001
    from pipeline.experiment.data_parallel_cell import train_cell_data_parallel

    done = finished_result(ctx, cell)
    if done is not None:
        return done
    try:
        return train_cell_data_parallel(spark, run, ctx, cell)
    except Exception:  # noqa: BLE001 - recorded as a failed cell
        import traceback

        return failure_row(ctx, cell, traceback.format_exc(limit=8))


def run_wave(spark, run: RunDirectory, ctx: CellContext, cells: list[Cell],  # noqa: ANN001
             progress: Progress) -> dict[Cell, dict[str, Any]]:
    """Train ``cells`` (retrying failures); returns each cell's row."""
    rows: dict[Cell, dict[str, Any]] = {}
    pending = []
    for cell in cells:
        done = finished_result(ctx, cell, verify=True)
        if (done is None and cell.control == TICKET and not cell.is_reference
                and run.settings.prune.method == "imp"):
            discard_chain_after(run, cell)
        if done is not None:
            rows[cell] = done
            progress.step(f"{cell.name} finished earlier, skipped")
        else:
            pending.append(cell)
    sc = spark.sparkContext
    for attempt in range(1, run.settings.grid.max_failures + 1):
        if not pending:
            break
        failed = []
        if run.settings.grid.mode == "data_parallel":
            outcomes = ((c, _run_data_parallel(spark, c, ctx, run)) for c in pending)
            for cell, row in outcomes:
                failed += _record(cell, row, rows, progress, attempt, run)
        else:
            with ThreadPoolExecutor(max_workers=len(pending)) as pool:
                futures = {pool.submit(_run_one, sc, c, ctx): c for c in pending}
                for future in as_completed(futures):
                    cell = futures[future]
                    try:
                        row = future.result()
                    except Exception as exc:  # noqa: BLE001 - Spark gave up on the task
                        row = failure_row(ctx, cell, f"Spark task failed: {exc}"[-4000:])
                    failed += _record(cell, row, rows, progress, attempt, run)
        pending = failed
    return rows


def train_cells(spark, run: RunDirectory, ctx: CellContext, cells: list[Cell],  # noqa: ANN001
                retrain: bool = False) -> dict[Cell, dict[str, Any]]:
    """Train ``cells`` of ``run`` now, as one wave of the grid; returns each cell's row.

    For tools that train chosen cells outside :func:`run_grid` (a benchmark timing a wave,
    a rerun of one cell). ``ctx`` is the job's (:meth:`RunDirectory.to_remote`) and the
    cells' masks must exist (:func:`make_level_masks`). The cells run as in a wave of the
    grid: parallel one-task Spark jobs (or Elephas in ``data_parallel`` mode), with its
    retries and its progress log. Finished cells are returned as stored; with ``retrain``
    their results are deleted first, so every cell trains again.
    """
    if retrain:
        for cell in cells:
            run.store.delete(*run.cell_result(cell))
    return run_wave(spark, run, ctx, cells, Progress("grid cell", len(cells), log))


def _record(cell: Cell, row: dict[str, Any], rows: dict, progress: Progress, attempt: int,
            run: RunDirectory) -> list[Cell]:
    rows[cell] = row
    if row.get("status") == "ok":
        progress.step(f"{cell.name}: top-1 {row['top1']:.4f}, "
                      f"{100 * row['weights_remaining_prunable']:.2f}% weights remaining, "
                      f"{row['train_seconds']:.0f}s")
        return []
    last_line = (row.get("error") or "").strip().splitlines()[-1:] or ["unknown error"]
    if attempt < run.settings.grid.max_failures:
        log.warning("grid: %s failed (attempt %d of %d), retrying: %s", cell.name, attempt,
                    run.settings.grid.max_failures, last_line[0])
        return [cell]
    progress.step(f"{cell.name} FAILED after {attempt} attempts: {last_line[0]}")
    return []


def discard_chain_after(run: RunDirectory, cell: Cell) -> None:
    """A ticket about to be (re)trained invalidates what its chain derived from it before:
    the masks of later levels and the cells trained under them."""
    level = cell.level
    while run.store.exists(*run.masks(level + 1, cell.rewind_epoch)):
        log.info("grid: discarding level %d of chain k%d (made from an earlier %s)", level + 1,
                 cell.rewind_epoch, cell.name)
        for parts in run.chain_after(level, cell.rewind_epoch):
            run.store.delete(*parts)
        level += 1


def _blocked_row(ctx: CellContext, cell: Cell, reason: str) -> dict[str, Any]:
    return failure_row(ctx, cell, reason)


def run_grid(spark, run: RunDirectory, ctx: CellContext, spec: ModelSpec,  # noqa: ANN001
             final_epoch: int) -> tuple[list[dict[str, Any]], float]:
    """All waves of the grid; returns the cell rows (in grid order) and mask seconds."""
    s = run.settings
    cells = grid_cells(s)
    progress = Progress("grid cell", len(cells), log)
    rows: dict[Cell, dict[str, Any]] = {}
    mask_seconds = 0.0
    for wave in waves(s, cells):
        runnable = []
        for cell in wave:
            chain_ok = all(
                rows.get(Cell(level, cell.rewind_epoch), {}).get("status", "ok") == "ok"
                for level in range(1, cell.level)
            ) if s.prune.method == "imp" else True
            if not chain_ok:
                rows[cell] = _blocked_row(ctx, cell, f"not trained: the level {cell.level - 1} "
                                          f"ticket of rewind chain k{cell.rewind_epoch} failed")
                progress.step(f"{cell.name} skipped: its chain failed")
                continue
            if not cell.is_reference:
                start = time.monotonic()
                make_level_masks(run, spec, cell.level, cell.rewind_epoch, final_epoch)
                mask_seconds += time.monotonic() - start
            runnable.append(cell)
        rows.update(run_wave(spark, run, ctx, runnable, progress))
    return [rows[c] for c in cells], mask_seconds
