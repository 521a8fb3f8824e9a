"""The ensemble job: prediction ensembles and merged tickets of a finished run.

Prediction ensembles average the softmax outputs of K finished tickets on val
(:mod:`pipeline.ensembles.predictions`), against the best single member and the dense
reference. Merged tickets take the union or intersection of two tickets' masks with one
member's rewind weights and train like a grid cell, in a run directory of their own under
the output (``merged-<how>-<members>-<hash>/replicate-<i>/``, laid out as any run), so a
rerun skips what is finished. Results are rows of the run's table format with a ``kind``
column (dense, member, prediction_ensemble, merged_union, merged_intersection).
"""

from __future__ import annotations

import dataclasses
import io
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

from pipeline.config import from_dict
from pipeline.ensembles.members import (
    Group,
    Member,
    default_merge_pair,
    parse_member,
    ticket_groups,
)
from pipeline.ensembles.merge import merge_masks
from pipeline.ensembles.settings import EnsembleSettings
from pipeline.ensembles.summary import ensemble_markdown
from pipeline.experiment.cells import Cell
from pipeline.experiment.dense_stage import model_spec, recorded_workers, workers
from pipeline.experiment.grid import train_cells
from pipeline.experiment.holdout_stage import with_holdout
from pipeline.experiment.mask_stage import policy_for
from pipeline.experiment.preflight import PreflightError, preflight
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.run_layout import SETTINGS, RunLayout
from pipeline.experiment.settings import PruneJobSettings
from pipeline.report.result_row import ResultRow, is_dense_run
from pipeline.report.table import csv_bytes, parquet_bytes, results_frame
from pipeline.store import ArtifactStore, StoreError, normalize_url
from pipeline.train.checkpoints import has_checkpoint, load_checkpoint

log = logging.getLogger(__name__)

RESULTS = "results.parquet"
OUTPUT_DIR = "ensembles"


@dataclass
class EnsembleOutcome:
    output_url: str
    report_url: str
    rows: list[dict[str, Any]]


def open_run(run_url: str) -> tuple[PruneJobSettings, RunLayout, pd.DataFrame]:
    """The finished run's settings, layout and results table (PreflightError if absent)."""
    layout = RunLayout(normalize_url(run_url).rstrip("/"))
    try:
        settings = from_dict(PruneJobSettings,
                             yaml.safe_load(layout.store.read_text(SETTINGS)))
        table = pd.read_parquet(io.BytesIO(layout.store.read_bytes(RESULTS)))
    except StoreError as exc:
        raise PreflightError(f"{layout.url} is not a finished run of prune_imagenet "
                             f"({exc})") from None
    return settings, layout, table


def _finished(table: pd.DataFrame, member: Member) -> dict[str, Any]:
    rows = table[(table["cell"] == member.cell.name) & (table["replicate"] == member.replicate)
                 & (table["status"] == "ok")]
    if rows.empty:
        raise PreflightError(f"ensemble: {member.name} did not finish in this run")
    chosen = rows.astype(object)
    return chosen.where(chosen.notna(), None).to_dict("records")[0]


def _member_weights(layout: RunLayout, member: Member) -> list:
    rep = layout.replicate(member.replicate)
    return load_checkpoint(rep.cell_dir(member.cell), rep.CELL_WEIGHTS)


def prediction_rows(spark, settings: PruneJobSettings, layout: RunLayout,  # noqa: ANN001
                    table: pd.DataFrame, groups: list[Group], facts) -> list[dict[str, Any]]:  # noqa: ANN001
    from pipeline.ensembles.predictions import evaluate_ensemble
    from pipeline.experiment.dense_stage import eval_shards

    spec = model_spec(RunDirectory(settings), facts)
    out = []
    for index, group in enumerate(groups, 1):
        members = [_finished(table, m) for m in group.members]
        sc = spark.sparkContext
        sc.setJobDescription(f"ensemble {group.name}")
        scored, ensemble = evaluate_ensemble(
            sc, spec, [_member_weights(layout, m) for m in group.members], facts.val_url,
            eval_shards(spark, RunDirectory(settings)), settings.eval.batch_size)
        for row, result in zip(members, scored, strict=True):
            if abs(row["top1"] - result.top1) > 1e-9:
                log.warning("ensemble: %s scores %.4f now, %.4f in the run's table",
                            row["cell"], result.top1, row["top1"])
        first = group.members[0]
        level = first.cell.level
        rewind = first.cell.rewind_epoch if group.grouping == "replicates" else None
        replicate = first.replicate if group.grouping == "rewinds" else 0
        row = ResultRow.evaluated(
            group.name, level, rewind, int(members[0]["seed"]),
            _mean(members, "weights_remaining_prunable"),
            _mean(members, "weights_remaining_overall"), ensemble.to_dict(),
            replicate=replicate).to_dict()
        row.update(kind="prediction_ensemble", grouping=group.grouping,
                   members=", ".join(m.name for m in group.members),
                   best_member_top1=max(r["top1"] for r in members))
        out.append(row)
        log.info("ensemble %d/%d %s: top-1 %.4f (best member %.4f)", index, len(groups),
                 group.name, ensemble.top1, row["best_member_top1"])
    return out


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(float(r[key]) for r in rows) / len(rows)


def _merged_run(settings: PruneJobSettings, output: str, how: str, a: Member, b: Member,
                weights_from: Member) -> RunDirectory:
    slug = f"{a.cell.name}-r{a.replicate}_{b.cell.name}-r{b.replicate}"
    run = dataclasses.replace(settings.run, output=output, name=f"merged-{how}-{slug}")
    merged = dataclasses.replace(settings, run=run)
    RunDirectory(merged).write_settings()
    return RunDirectory(merged, weights_from.replicate)


def merged_rows(spark, settings: PruneJobSettings, s: EnsembleSettings,  # noqa: ANN001
                layout: RunLayout, table: pd.DataFrame, pairs: list[tuple[Member, Member]],
                facts, output: str) -> list[dict[str, Any]]:  # noqa: ANN001
    """Train (or read back) the merged tickets of ``pairs``; their rows."""
    from pipeline.tickets import masks_from_bytes, masks_to_bytes

    out = []
    for a, b in pairs:
        rows = [_finished(table, a), _finished(table, b)]
        source = a if s.merge_weights == "first" else b
        src = layout.replicate(source.replicate)
        masks = [masks_from_bytes(layout.replicate(m.replicate).cell_dir(m.cell).read_bytes(
            RunLayout.CELL_MASKS)) for m in (a, b)]
        for how in s.merge:
            run = _merged_run(settings, output, how, a, b, source)
            cell = Cell(source.cell.level, source.cell.rewind_epoch)
            k = cell.rewind_epoch
            names = [run.dense_weights(k)] + (
                [run.dense_optimizer(k)] if settings.rewind.optimizer == "restore" and k else [])
            for name in names:
                if not has_checkpoint(run.dense_dir(), name):
                    for ext in ("npz", "json"):  # the record last: it marks the copy whole
                        run.dense_dir().write_bytes(src.dense_dir().read_bytes(f"{name}.{ext}"),
                                                    f"{name}.{ext}")
            if not run.store.exists(*run.masks(cell.level, k)):
                run.store.write_bytes(masks_to_bytes(merge_masks(*masks, how)),
                                      *run.masks(cell.level, k))
            n_workers = recorded_workers(RunDirectory(settings, source.replicate)) or workers(
                spark, run)
            ctx = run.to_remote(facts, model_spec(run, facts), n_workers,
                                policy_for(run).to_dict())
            row = dict(train_cells(spark, run, ctx, [cell])[cell])
            row.pop("history", None)
            row.update(cell=f"{how}({a.name}, {b.name})", kind=f"merged_{how}",
                       members=f"{a.name}, {b.name}", weights_from=source.name,
                       best_member_top1=max(r["top1"] for r in rows))
            out.append(row)
    return out


def _member_rows(table: pd.DataFrame, members: set[Member]) -> list[dict[str, Any]]:
    out = []
    for member in sorted(members, key=lambda m: (m.cell.level, m.cell.rewind_epoch,
                                                 m.replicate)):
        row = _finished(table, member)
        row.update(kind="member")
        out.append(row)
    dense = table[[is_dense_run(r) for r in table.to_dict("records")]].astype(object)
    for row in dense.where(dense.notna(), None).to_dict("records"):
        row.update(kind="dense")
        out.append(row)
    return out


def run_ensemble_job(run_url: str, ensemble: EnsembleSettings, spark=None  # noqa: ANN001
                     ) -> EnsembleOutcome:
    """Prediction ensembles and merged tickets of the finished run at ``run_url``."""
    from pipeline.spark_session import get_spark

    settings, layout, table = open_run(run_url)
    # merged tickets train on the run's own training rows (less its holdout, if it has one)
    facts = with_holdout(layout, settings, preflight(settings))
    levels = ensemble.levels or list(range(1, settings.prune.levels + 1))
    if max(levels) > settings.prune.levels:
        raise PreflightError(f"ensemble.levels: {levels} exceeds the run's "
                             f"{settings.prune.levels} levels")
    groups = ticket_groups(settings, levels, ensemble.across)
    if ensemble.members:
        listed = tuple(parse_member(m, settings) for m in ensemble.members)
        groups.append(Group("listed: " + ", ".join(m.name for m in listed), "listed", listed))
    pairs = [tuple(parse_member(p, settings) for p in text.split("+"))
             for text in ensemble.merge_pairs]
    if not ensemble.merge_pairs and ensemble.merge:
        default = default_merge_pair(settings)
        pairs = [default] if default else []
    for group in groups:
        for member in group.members:
            _finished(table, member)
    output = normalize_url(ensemble.output or f"{layout.url}/{OUTPUT_DIR}").rstrip("/")
    spark = spark or get_spark("ensemble-tickets", master=settings.run.master)
    log.info("ensembles of %s: %d prediction ensemble(s), %d merged pair(s) x %s", layout.url,
             len(groups), len(pairs), ensemble.merge)
    rows = prediction_rows(spark, settings, layout, table, groups, facts)
    rows += merged_rows(spark, settings, ensemble, layout, table, pairs, facts, output)
    members = {m for g in groups for m in g.members} | {m for p in pairs for m in p}
    rows = _member_rows(table, members) + rows
    df = results_frame(rows)
    store = ArtifactStore(output)
    store.write_bytes(parquet_bytes(df), "results.parquet")
    store.write_bytes(csv_bytes(df), "results.csv")
    report = store.write_text(ensemble_markdown(df, layout.url), "report.md")
    log.info("ensemble report %s", report)
    return EnsembleOutcome(output, report, rows)
