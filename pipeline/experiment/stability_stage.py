"""Stage 4 (``stability.enabled``): instability analysis, linear mode connectivity.

For each replicate, subject (the dense network, level 0, or the level-L ticket) and rewind
point k, two copies train from k to T with the cells' procedure, each on its own data order
(:attr:`CellContext.data_order_seed` of its copy). They are grid cells in all but name
(``L<level>-k<k>-copy<c>``, under ``stability/``): parallel Spark tasks, retried, resumed.
Then each path between two copies is evaluated at ``stability.alphas`` points, split into
Spark tasks, on val and on the first ``stability.train_images`` train images.

Under ``stability.batchnorm: recompute`` every point's BatchNorm statistics, the two ends'
included, are recomputed from the same train batches, so the path is compared like for
like; under ``interpolate`` the ends are exactly the two copies.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.cells import Cell
from pipeline.experiment.grid import Replicate, run_wave
from pipeline.experiment.mask_stage import make_level_masks
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.settings import PruneJobSettings
from pipeline.logs import Progress
from pipeline.models.spec import ModelSpec

log = logging.getLogger(__name__)

PATH_COLUMNS = ["replicate", "subject", "level", "k", "alpha", "split", "top1", "loss"]
STABILITY_PARQUET = "stability.parquet"
STABILITY_CSV = "stability.csv"
STABILITY_JSON = "stability.json"


def subjects(settings: PruneJobSettings) -> list[tuple[str, int]]:
    """(subject, level) pairs: ``("dense", 0)`` and ``("tickets", L)`` for each level."""
    s = settings.stability
    out = [("dense", 0)] if "dense" in s.subjects else []
    if "tickets" in s.subjects:
        out += [("tickets", level) for level in (s.levels or [settings.prune.levels])]
    return out


def copy_cells(settings: PruneJobSettings) -> list[Cell]:
    """The copies to train: two per subject and rewind point."""
    epochs = settings.stability.rewind_epochs(settings.rewind.epochs)
    return [Cell(level, k, copy=c) for _, level in subjects(settings) for k in epochs
            for c in (0, 1)]


def copy_context(ctx: CellContext, cell: Cell) -> CellContext:
    """``ctx`` for one copy: the copy's own data order."""
    return dataclasses.replace(ctx, stability_copy=cell.copy)


def train_copies(spark, replicates: list[Replicate], spec: ModelSpec,  # noqa: ANN001
                 ) -> dict[tuple[int, Cell], dict[str, Any]]:
    """Train (or find finished) every replicate's copies, as one wave of cells."""
    from pipeline.experiment.dense_stage import dense_final_epoch

    cells = copy_cells(replicates[0].run.settings)
    units = []
    for rep in replicates:
        for cell in cells:
            if cell.level > 0:
                make_level_masks(rep.run, spec, cell.level, cell.rewind_epoch,
                                 dense_final_epoch(rep.run))
            units.append((Replicate(rep.run, copy_context(rep.ctx, cell)), cell))
    return run_wave(spark, units, Progress("stability copy", len(units), log))


@dataclass(frozen=True)
class PathChunk:
    """Some points of one path: what a Spark task evaluates."""

    subject: str
    level: int
    k: int
    alphas: tuple[float, ...]


def evaluate_chunk(chunk: PathChunk, ctx: CellContext, batchnorm: str, batchnorm_batches: int,
                   train_images: int, batch_size: int) -> list[dict[str, Any]]:
    """Spark task body: the network at each of ``chunk.alphas`` on the line between the two
    copies, evaluated on val and on the first ``train_images`` train images."""
    from pipeline.data.dataset import DatasetSplit
    from pipeline.train.checkpoints import load_checkpoint
    from pipeline.train.devices import configure_task_devices
    from pipeline.train.evaluation import (
        cached_model,
        evaluate_local,
        predict_probs,
        prob_sums,
        to_result,
    )
    from pipeline.train.interpolation import interpolate, recompute_batchnorm
    from pipeline.train.variable_io import set_weights

    configure_task_devices()
    layout = ctx.layout
    ends = [load_checkpoint(layout.cell_dir(Cell(chunk.level, chunk.k, copy=c)),
                            layout.CELL_WEIGHTS) for c in (0, 1)]
    size = ctx.spec.image_size
    needed = max(train_images, batchnorm_batches * batch_size if batchnorm == "recompute" else 0)
    x_train, y_train = DatasetSplit.of(ctx.train_url).load(limit=needed, image_size=size)
    bn_x = x_train[:batchnorm_batches * batch_size].astype(np.float32)
    bn_batches = [bn_x[i:i + batch_size] for i in range(0, len(bn_x), batch_size)]
    model = cached_model(ctx.spec.plain)
    rows = []
    for alpha in chunk.alphas:
        set_weights(model, interpolate(ends[0], ends[1], alpha))
        if batchnorm == "recompute":
            recompute_batchnorm(model, bn_batches)
        key = {"replicate": ctx.replicate, "subject": chunk.subject, "level": chunk.level,
               "k": chunk.k, "alpha": float(alpha)}
        val = evaluate_local(model, ctx.val_url, size, batch_size)
        rows.append({**key, "split": "val", "top1": val.top1, "loss": val.loss})
        if train_images:
            sums = prob_sums(predict_probs(model, x_train[:train_images], batch_size),
                             y_train[:train_images])
            train = to_result(sums)
            rows.append({**key, "split": "train", "top1": train.top1, "loss": train.loss})
    return rows


def _chunks(points: list[float], pieces: int) -> list[tuple[float, ...]]:
    pieces = max(1, min(pieces, len(points)))
    return [tuple(part.tolist()) for part in np.array_split(np.asarray(points), pieces)]


def evaluate_paths(spark, paths: list[tuple[Replicate, str, int, int]],  # noqa: ANN001
                   settings: PruneJobSettings) -> list[dict[str, Any]]:
    """Evaluate ``paths`` (replicate, subject, level, k) as Spark tasks, a few points of a
    path each, so that every task slot works; each finished path is written to its
    replicate's ``stability/L<level>/k<k>/path.json``. Returns their rows."""
    from pipeline.spark_session import default_parallelism
    from pipeline.train.interpolation import alphas

    if not paths:
        return []
    s = settings.stability
    points = alphas(s.alphas)
    pieces = math.ceil(default_parallelism(spark) / len(paths))
    items = [(PathChunk(subject, level, k, part), rep.ctx)
             for rep, subject, level, k in paths for part in _chunks(points, pieces)]
    task = functools.partial(_run_chunk, batchnorm=s.batchnorm,
                             batchnorm_batches=s.batchnorm_batches,
                             train_images=s.train_images,
                             batch_size=settings.eval.batch_size)
    sc = spark.sparkContext
    sc.setJobDescription(f"stability: {len(paths)} path(s) at {len(points)} points")
    rows = [row for part in sc.parallelize(items, len(items)).map(task).collect()
            for row in part]
    for rep, subject, level, k in paths:
        mine = [r for r in rows if r["replicate"] == rep.index and r["level"] == level
                and r["k"] == k and r["subject"] == subject]
        rep.run.store.write_json(sorted(mine, key=lambda r: (r["split"], r["alpha"])),
                                 *rep.run.stability_path(level, k))
    return rows


def _run_chunk(item: tuple[PathChunk, CellContext], **options: Any) -> list[dict[str, Any]]:
    chunk, ctx = item
    return evaluate_chunk(chunk, ctx, **options)


@dataclass
class StabilityOutcome:
    path: pd.DataFrame  # PATH_COLUMNS
    summary: list  # pipeline.report.instability.StabilityAt
    recommended: int | None
    markdown: str


def run_stability_stage(spark, run: RunDirectory, replicates: list[Replicate],  # noqa: ANN001
                        spec: ModelSpec) -> StabilityOutcome:
    """Train the copies, evaluate their paths, write ``stability.parquet`` (and ``.csv``)
    and ``stability.json``; returns the table, its summary and the report section."""
    from pipeline.report.instability import (
        INSTABILITY_PNG,
        PATH_PNG,
        instability_figure,
        path_figure,
        path_instabilities,
        recommended_rewind_epoch,
        stability_json,
        stability_markdown,
        summarize,
    )
    from pipeline.report.table import csv_bytes, parquet_bytes

    settings = run.settings
    copies = train_copies(spark, replicates, spec)
    epochs = settings.stability.rewind_epochs(settings.rewind.epochs)
    rows, pending = [], []
    for rep in replicates:
        for subject, level in subjects(settings):
            for k in epochs:
                parts = rep.run.stability_path(level, k)
                if rep.run.store.exists(*parts):
                    rows += rep.run.store.read_json(*parts)
                    continue
                failed = [c for c in (0, 1) if copies.get(
                    (rep.index, Cell(level, k, copy=c)), {}).get("status") != "ok"]
                if failed:
                    log.warning("stability: L%d-k%d (replicate %d) not evaluated: copy %s "
                                "failed; rerun the same command to retry", level, k,
                                rep.index, failed)
                    continue
                pending.append((rep, subject, level, k))
    rows += evaluate_paths(spark, pending, settings)
    frame = pd.DataFrame.from_records(rows, columns=PATH_COLUMNS).sort_values(
        ["subject", "level", "k", "replicate", "split", "alpha"], ignore_index=True)
    run.store.write_bytes(parquet_bytes(frame), STABILITY_PARQUET)
    run.store.write_bytes(csv_bytes(frame), STABILITY_CSV)
    per_replicate = path_instabilities(frame)
    summary = summarize(per_replicate, settings.stability.threshold)
    recommended = recommended_rewind_epoch(summary)
    run.store.write_json(stability_json(summary, recommended, settings.stability), STABILITY_JSON)
    for s in summary:
        log.info("stability: %s L%d k%d on %s: instability %.4f [%.4f, %.4f] over %d "
                 "replicate(s)%s", s.subject, s.level, s.k, s.split, s.mean, s.low, s.high,
                 s.n, " (stable)" if s.stable else "")
    figures = []
    for name, png in ((PATH_PNG, path_figure(frame)),
                      (INSTABILITY_PNG, instability_figure(summary, settings.stability.threshold))):
        if png is not None:
            run.store.write_bytes(png, *name.split("/"))
            figures.append(name)
    markdown = stability_markdown(summary, recommended, settings.stability, figures)
    return StabilityOutcome(frame, summary, recommended, markdown)
