"""Stage 3: the ticket grid, wave by wave, each cell its own Spark job of one task.

Cells of a wave, of every replicate, are submitted from driver threads as separate one-task
Spark jobs, so they run in parallel on every free task slot and each finished cell is
reported at once (with an ETA) instead of when the slowest one ends. Finished cells
(``result.json`` present) are never retrained. A cell whose Python code fails is retried up
to ``grid.max_failures`` times and then recorded as failed with its error, without
discarding the others; a task lost with its executor is retried by Spark itself.
"""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Replicate:
    """One replicate's run directory and the context its cells receive."""

    run: RunDirectory
    ctx: CellContext

    @property
    def index(self) -> int:
        return self.ctx.replicate

    @property
    def iterative(self) -> bool:
        """Level L's masks come from this replicate's level L-1 ticket (IMP). A transfer
        run's masks all come from its source, so its cells depend on nothing in it."""
        return self.run.settings.prune.method == "imp" and not self.ctx.transferred


Key = tuple[int, Cell]  # (replicate, cell)


def _run_one(sc, cell: Cell, ctx: CellContext) -> dict[str, Any]:  # noqa: ANN001
    sc.setJobDescription(f"grid cell {cell.name} (replicate {ctx.replicate})")
    task = functools.partial(run_cell_task, ctx=ctx)
    return sc.parallelize([cell], 1).map(task).collect()[0]


def _run_data_parallel(spark, cell: Cell, rep: Replicate):  # noqa: ANN001
    from pipeline.experiment.data_parallel_cell import train_cell_data_parallel

    done = finished_result(rep.ctx, cell)
    if done is not None:
        return done
    try:
        return train_cell_data_parallel(spark, rep.run, rep.ctx, cell)
    except Exception:  # noqa: BLE001 - recorded as a failed cell
        import traceback

        return failure_row(rep.ctx, cell, traceback.format_exc(limit=8))


def _name(key: Key, replicates: int) -> str:
    replicate, cell = key
    return f"{cell.name} (replicate {replicate})" if replicates > 1 else cell.name


def run_wave(spark, units: list[tuple[Replicate, Cell]],  # noqa: ANN001
             progress: Progress) -> dict[Key, dict[str, Any]]:
    """Train the cells of ``units`` (of any replicates) together, retrying failures;
    returns each cell's row by (replicate, cell)."""
    rows: dict[Key, dict[str, Any]] = {}
    pending: list[tuple[Replicate, Cell]] = []
    count = len({rep.index for rep, _ in units})
    for rep, cell in units:
        done = finished_result(rep.ctx, cell, verify=True)
        if (done is None and cell.control == TICKET and not cell.is_reference
                and cell.copy is None and rep.iterative):
            discard_chain_after(rep.run, cell)
        if done is not None:
            rows[rep.index, cell] = done
            progress.step(f"{_name((rep.index, cell), count)} finished earlier, skipped")
        else:
            pending.append((rep, cell))
    if not units:
        return rows
    settings = units[0][0].run.settings
    sc = spark.sparkContext
    for attempt in range(1, settings.grid.max_failures + 1):
        if not pending:
            break
        failed = []
        if settings.grid.mode == "data_parallel":
            for rep, cell in pending:
                row = _run_data_parallel(spark, cell, rep)
                failed += _record(rep, cell, row, rows, progress, attempt, count)
        else:
            with ThreadPoolExecutor(max_workers=len(pending)) as pool:
                futures = {pool.submit(_run_one, sc, cell, rep.ctx): (rep, cell)
                           for rep, cell in pending}
                for future in as_completed(futures):
                    rep, cell = futures[future]
                    try:
                        row = future.result()
                    except Exception as exc:  # noqa: BLE001 - Spark gave up on the task
                        row = failure_row(rep.ctx, cell, f"Spark task failed: {exc}"[-4000:])
                    failed += _record(rep, cell, row, rows, progress, attempt, count)
        pending = failed
    return rows


def train_cells(spark, run: RunDirectory, ctx: CellContext, cells: list[Cell],  # noqa: ANN001
                retrain: bool = False) -> dict[Cell, dict[str, Any]]:
    """Train ``cells`` of one replicate now, as one wave of the grid; returns each cell's row.

    For tools that train chosen cells outside :func:`run_grid` (a benchmark timing a wave,
    a rerun of one cell). ``ctx`` is the replicate's (:meth:`RunDirectory.to_remote`) and
    the cells' masks must exist (:func:`make_level_masks`). The cells run as in a wave of
    the grid: parallel one-task Spark jobs (or Elephas in ``data_parallel`` mode), with its
    retries and its progress log. Finished cells are returned as stored; with ``retrain``
    their results are deleted first, so every cell trains again.
    """
    if retrain:
        for cell in cells:
            run.store.delete(*run.cell_result(cell))
    rep = Replicate(run, ctx)
    rows = run_wave(spark, [(rep, c) for c in cells], Progress("grid cell", len(cells), log))
    return {cell: row for (_, cell), row in rows.items()}


def _record(rep: Replicate, cell: Cell, row: dict[str, Any], rows: dict, progress: Progress,
            attempt: int, replicates: int) -> list[tuple[Replicate, Cell]]:
    rows[rep.index, cell] = row
    name = _name((rep.index, cell), replicates)
    max_failures = rep.run.settings.grid.max_failures
    if row.get("status") == "ok":
        progress.step(f"{name}: top-1 {row['top1']:.4f}, "
                      f"{100 * row['weights_remaining_prunable']:.2f}% weights remaining, "
                      f"{row['train_seconds']:.0f}s")
        return []
    last_line = (row.get("error") or "").strip().splitlines()[-1:] or ["unknown error"]
    if attempt < max_failures:
        log.warning("grid: %s failed (attempt %d of %d), retrying: %s", name, attempt,
                    max_failures, last_line[0])
        return [(rep, cell)]
    progress.step(f"{name} FAILED after {attempt} attempts: {last_line[0]}")
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


def run_grid(spark, replicates: list[Replicate], spec: ModelSpec,  # noqa: ANN001
             cells: list[Cell] | None = None) -> tuple[list[dict[str, Any]], float]:
    """All waves of the grid (``cells``, default :func:`grid_cells` of the settings), the
    cells of every replicate scheduled together in each wave; returns the cell rows
    (replicate by replicate, in grid order) and mask seconds. Level-1 masks come from each
    replicate's last dense epoch (the early-bird stop's, when it stopped early)."""
    from pipeline.experiment.dense_stage import dense_final_epoch

    s = replicates[0].run.settings
    cells = grid_cells(s) if cells is None else cells
    progress = Progress("grid cell", len(cells) * len(replicates), log)
    rows: dict[Key, dict[str, Any]] = {}
    mask_seconds = 0.0
    iterative = replicates[0].iterative
    for wave in waves(s, cells) if iterative or s.prune.method == "oneshot" else [cells]:
        runnable: list[tuple[Replicate, Cell]] = []
        for rep in replicates:
            for cell in wave:
                chain_ok = all(
                    rows.get((rep.index, Cell(level, cell.rewind_epoch)), {}).get(
                        "status", "ok") == "ok"
                    for level in range(1, cell.level)
                ) if iterative else True
                if not chain_ok:
                    rows[rep.index, cell] = failure_row(
                        rep.ctx, cell, f"not trained: the level {cell.level - 1} ticket of "
                        f"rewind chain k{cell.rewind_epoch} failed")
                    progress.step(f"{_name((rep.index, cell), len(replicates))} skipped: its "
                                  "chain failed")
                    continue
                if not cell.is_reference:
                    start = time.monotonic()
                    make_level_masks(rep.run, spec, cell.level, cell.rewind_epoch,
                                     dense_final_epoch(rep.run))
                    mask_seconds += time.monotonic() - start
                runnable.append((rep, cell))
        rows.update(run_wave(spark, runnable, progress))
    return [rows[rep.index, c] for rep in replicates for c in cells], mask_seconds
