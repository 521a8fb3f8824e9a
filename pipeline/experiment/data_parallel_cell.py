"""``grid.mode: data_parallel``: one cell trained with Elephas across all executors.

For cells too big for one executor. The masked model travels to the workers as JSON with
the masked layers as ``custom_objects``; masks are non-trainable weights whose deltas are
zero, and the kernels' mask constraint keeps pruned entries at exactly 0.0 in every
worker, so the averaged weights keep them at 0.0 too.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.data.dataset import DatasetSplit
from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.cell_run import finish_cell, prepare_model
from pipeline.experiment.cells import Cell
from pipeline.experiment.dense_stage import eval_shards, workers
from pipeline.experiment.run_dir import RunDirectory
from pipeline.train.data_parallel import DataParallelJob, make_spark_model, train_epoch
from pipeline.train.evaluation import evaluate_distributed
from pipeline.train.optimizers import make_loss, make_optimizer, steps_per_epoch


def train_cell_data_parallel(
    spark, run: RunDirectory, ctx: CellContext, cell: Cell  # noqa: ANN001
) -> dict[str, Any]:
    start = time.monotonic()
    sc = spark.sparkContext
    s = run.settings
    model, masks, start_weights = prepare_model(ctx, cell)
    n_workers = workers(spark, run)
    job = DataParallelJob(ctx.spec, ctx.train_url, ctx.num_classes, n_workers,
                          s.train.round_images_per_worker, s.train.batch_size, s.train.augment,
                          cell.seed(ctx.run_seed), ctx.deterministic)
    steps = steps_per_epoch(ctx.train_images, s.train.batch_size, n_workers)
    spark_model = make_spark_model(model, job, make_optimizer(s.train, steps),
                                   make_loss(s.train.label_smoothing))
    groups = DatasetSplit.of(ctx.train_url).row_groups()
    history = []
    for epoch in range(1, s.train.epochs + 1):
        stats = train_epoch(sc, spark_model, job, groups, epoch)
        result = evaluate_distributed(sc, ctx.spec, model.get_weights(), ctx.val_url,
                                      eval_shards(spark, run), ctx.eval_batch_size)
        history.append({"epoch": epoch, "loss": stats.loss, **result.to_dict()})
    return finish_cell(ctx, cell, model, masks, start_weights, history,
                       time.monotonic() - start)
