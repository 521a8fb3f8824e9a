"""``early_bird.compare``: tickets drawn at the early-bird point, next to the full run's.

For each replicate whose chosen detector fired at epoch e, a run directory of its own
(``<run>/early-bird/<name>-<hash>/replicate-<i>/``) receives the replicate's dense
checkpoints of e and of every rewind point, and a dense marker ending at e; its grid then
draws level-1 masks from the weights of epoch e and trains the same pruned cells (rewind
points, controls, levels; the level-0 cells would be the run's own) with the same seeds.
Its rows join the run's table with the control renamed ``early_bird`` (the ticket)
or ``early_bird_<control>``, so the report pairs each full-training ticket with the
early-bird ticket of its replicate.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from pipeline.early_bird.tracker import EARLY_BIRD_JSON
from pipeline.experiment.cells import grid_cells
from pipeline.experiment.dense_stage import model_spec, recorded_workers
from pipeline.experiment.grid import Replicate, run_grid
from pipeline.experiment.mask_stage import policy_for
from pipeline.experiment.run_dir import RunDirectory
from pipeline.report.result_row import ResultRow
from pipeline.tickets.controls import TICKET
from pipeline.train.checkpoints import has_checkpoint

log = logging.getLogger(__name__)

COMPARE_DIR = "early-bird"
EARLY_BIRD_TICKET = "early_bird"


def renamed(control: str) -> str:
    return EARLY_BIRD_TICKET if control == TICKET else f"{EARLY_BIRD_TICKET}_{control}"


def detection_epoch(rep: RunDirectory) -> int | None:
    """The epoch where the replicate's chosen detector fired, if it did."""
    store = rep.dense_dir()
    if not store.exists(EARLY_BIRD_JSON):
        return None
    found = store.read_json(EARLY_BIRD_JSON)["detections"].get(
        rep.settings.early_bird.detector)
    return None if not found else int(found["epoch"])


def _copy(src, dst, name: str) -> None:  # noqa: ANN001 - ArtifactStores
    if not has_checkpoint(dst, name):
        for ext in ("npz", "json"):  # the record last: it marks the copy whole
            dst.write_bytes(src.read_bytes(f"{name}.{ext}"), f"{name}.{ext}")


def early_bird_replicate(rep: RunDirectory, facts, epoch: int) -> Replicate:  # noqa: ANN001
    """The early-bird twin of replicate ``rep``, its dense stage ending at ``epoch``."""
    settings = rep.run_settings
    run = dataclasses.replace(settings.run, output=f"{rep.root.url}/{COMPARE_DIR}")
    twin = RunDirectory(dataclasses.replace(settings, run=run), rep.replicate_index)
    if twin.replicate_index == 0:
        RunDirectory(twin.run_settings).write_settings()
    restore = rep.settings.rewind.optimizer == "restore"
    for k in sorted({*rep.settings.rewind.epochs, epoch}):
        _copy(rep.dense_dir(), twin.dense_dir(), rep.dense_weights(k))
        if restore and k:
            _copy(rep.dense_dir(), twin.dense_dir(), rep.dense_optimizer(k))
    workers = recorded_workers(rep) or 1
    if twin.stage_info("dense").get("final_epoch") != epoch:
        twin.mark_done("dense", {"seconds": 0.0, "workers": workers, "final_epoch": epoch,
                                 "copied_from": rep.url})
    ctx = twin.to_remote(facts, model_spec(twin, facts), workers, policy_for(twin).to_dict())
    return Replicate(twin, ctx)


def compare_rows(spark, run: RunDirectory, facts) -> list[dict[str, Any]]:  # noqa: ANN001
    """Train the early-bird tickets of every replicate whose detector fired; their rows."""
    twins = []
    for rep in run.replicates():
        epoch = detection_epoch(rep)
        if epoch is None:
            log.warning("early-bird: replicate %d: the %s detector did not fire; no early-bird "
                        "tickets to compare", rep.replicate_index, rep.settings.early_bird.detector)
            continue
        twins.append(early_bird_replicate(rep, facts, epoch))
    if not twins:
        return []
    log.info("early-bird: training the tickets drawn at the detection point of %d "
             "replicate(s)", len(twins))
    cells = [c for c in grid_cells(run.settings) if not c.is_reference]
    rows, _ = run_grid(spark, twins, model_spec(run, facts), cells=cells)
    out = []
    for row in rows:
        row.pop("history", None)
        base = ResultRow.from_mapping(row)
        out.append(ResultRow.relabelled(base, renamed(base.control)).to_dict())
    return out
