"""The transfer job: a source run's tickets trained on a target data set, with controls.

Per replicate it moves the source's rewind weights and masks into the transfer run
(:mod:`pipeline.transfer.source`), draws the few-shot subset if asked, trains the dense
network from scratch on the target (the dense stage: the from-scratch baseline), and
trains the grid of the main job on the target: the level-0 cells (the dense source
network transferred), the source tickets and their controls. The run directory, grid,
resume, retries and report are the main job's (:func:`pipeline.experiment.job.run_study`).
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import Any

import pandas as pd

from pipeline.config import to_dict
from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.cells import Cell, grid_cells
from pipeline.experiment.dense_stage import model_spec
from pipeline.experiment.job import JobOutcome, Study, run_study
from pipeline.experiment.preflight import DatasetFacts, PreflightError, preflight
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.run_layout import RunLayout
from pipeline.report.figures import LineNames
from pipeline.store import ArtifactStore, StoreError, normalize_url
from pipeline.transfer.settings import TransferJobSettings, check_target_run, source_settings
from pipeline.transfer.source import check_source, import_source, transfer_levels
from pipeline.transfer.summary import TARGET_TICKET, target_ticket_rows, transfer_markdown

log = logging.getLogger(__name__)

RESULTS = "results.parquet"
LINE_NAMES = LineNames(
    ticket="source ticket", reference="dense source transferred",
    dense="dense trained from scratch on the target",
    controls={TARGET_TICKET: "ticket found on the target", "reinit": "reinit (ticket mask)",
              "random_mask": "random mask (transferred weights)"})


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise PreflightError(message)


def transfer_preflight(s: TransferJobSettings) -> tuple[DatasetFacts, list[int]]:
    """The main job's checks, then the transfer's: the source has what is transferred, the
    target run (if any) is on the same data with the same training settings. Returns the
    facts and the levels."""
    facts = preflight(s)
    t = s.transfer
    _check(bool(t.source), "transfer.source: not set (--from RUN_DIR)")
    source = source_settings(t.source)
    source_levels = int((source.get("prune") or {}).get("levels", 0))
    source_rewinds = list((source.get("rewind") or {}).get("epochs", []))
    levels = transfer_levels(RunDirectory(s), source_levels)
    _check(all(1 <= level <= source_levels for level in levels),
           f"transfer.levels: {levels} is not within the source's levels 1..{source_levels}")
    _check(all(k in source_rewinds for k in s.rewind.epochs),
           f"rewind.epochs: {s.rewind.epochs} includes points the source run did not save "
           f"as rewind points ({source_rewinds})")
    _check(s.grid.mode == "task", "grid.mode: transfer cells train in task mode (one Spark "
           "task per cell); data_parallel is not supported for transfer runs")
    source_replicates = int((source.get("run") or {}).get("replicates", 1))
    _check(s.run.replicates <= source_replicates,
           f"run.replicates: {s.run.replicates} asked, the source run has "
           f"{source_replicates} (replicate i transfers the source's replicate i)")
    if t.shots_per_class:
        workers = max(1, s.train.num_workers)
        _check(t.shots_per_class * facts.num_classes >= workers * s.train.batch_size,
               f"transfer.shots_per_class: {t.shots_per_class} x {facts.num_classes} classes "
               f"is fewer images than one global batch ({workers} workers x "
               f"train.batch_size {s.train.batch_size}); lower train.batch_size")
    check_source(RunLayout(normalize_url(t.source)), s.run.replicates, levels, s.rewind.epochs)
    if t.target_run:
        check_target_run(s)  # as load_transfer_settings did: settings made otherwise too
        _check(ArtifactStore(normalize_url(t.target_run)).exists(RESULTS),
               f"transfer.target_run: {t.target_run} has no {RESULTS} (did it finish?)")
    return facts, levels


def _with_shots(run: RunDirectory, facts: DatasetFacts) -> DatasetFacts:
    from pipeline.transfer.shots import ShotsError, write_shots

    shots = run.settings.transfer.shots_per_class
    try:
        train_url = write_shots(facts.train_url, run.shots_url(), shots, run.settings.run.seed)
    except ShotsError as exc:
        raise PreflightError(str(exc)) from None
    return dataclasses.replace(facts, train_url=train_url,
                               train_rows=shots * facts.num_classes)


def transfer_cells(s: TransferJobSettings, levels: list[int]) -> list[Cell]:
    """The grid's cells at the transferred levels (and every level-0 cell)."""
    return [c for c in grid_cells(dataclasses.replace(
        s, prune=dataclasses.replace(s.prune, levels=max(levels)))) if c.level in (0, *levels)]


def run_transfer_job(settings: TransferJobSettings, spark=None) -> JobOutcome:  # noqa: ANN001
    """Run (or resume) a transfer; raises PreflightError before any work on bad input."""
    facts, levels = transfer_preflight(settings)
    t = settings.transfer
    source = RunLayout(normalize_url(t.source))

    def prepare(run: RunDirectory, facts: DatasetFacts) -> DatasetFacts:
        if t.shots_per_class:
            facts = _with_shots(run, facts)
        import_source(run, source.replicate(run.replicate_index or 0), model_spec(run, facts),
                      levels)
        return facts

    def context(ctx: CellContext) -> CellContext:
        return dataclasses.replace(ctx, transfer_mode=t.mode)

    def extra_rows(spark, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: ANN001
        if not t.target_run:
            return []
        try:
            data = ArtifactStore(normalize_url(t.target_run)).read_bytes(RESULTS)
            table = pd.read_parquet(io.BytesIO(data))
        except (OSError, StoreError) as exc:
            log.warning("transfer: cannot read the target run's results (%s)", exc)
            return []
        return target_ticket_rows(table, levels, settings.rewind.epochs,
                                  settings.run.replicates)

    def preface(rows: list[dict[str, Any]]) -> str:
        return transfer_markdown(rows, to_dict(settings), settings.grid.controls)

    study = Study(app_name="transfer-tickets", prepare=prepare, context=context,
                  cells=transfer_cells(settings, levels), extra_rows=extra_rows,
                  preface=preface, line_names=LINE_NAMES)
    return run_study(settings, facts, study, spark)
