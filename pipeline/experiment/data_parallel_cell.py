"""``grid.mode: data_parallel``: one cell trained with Elephas across all executors.

For cells too big for one executor. The masked model travels to the workers as JSON with
the masked layers as ``custom_objects``; masks are non-trainable weights whose deltas are
zero, and the kernels' mask constraint keeps pruned entries at exactly 0.0 in every
worker, so the averaged weights keep them at 0.0 too. The rounds are the dense stage's:
a level-0 cell rewound to k with the dense optimizer state retraces its epochs k+1..T.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.data.dataset import DatasetSplit
from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.cell_run import (
    cell_epochs,
    epoch_entry,
    finish_cell,
    moments_origin,
    prepare_model,
    start_state,
)
from pipeline.experiment.cells import Cell
from pipeline.experiment.dense_stage import eval_shards
from pipeline.experiment.run_dir import RunDirectory
from pipeline.train.data_parallel import make_spark_model, train_epoch
from pipeline.train.evaluation import evaluate_distributed
from pipeline.train.optimizers import make_loss, make_optimizer


def train_cell_data_parallel(
    spark, run: RunDirectory, ctx: CellContext, cell: Cell  # noqa: ANN001
) -> dict[str, Any]:
    start = time.monotonic()
    sc = spark.sparkContext
    model, masks, start_weights, provenance = prepare_model(ctx, cell)
    procedure = ctx.procedure()
    optimizer = make_optimizer(ctx.train, procedure.steps_per_epoch,
                               moments_from=moments_origin(ctx, cell, procedure))
    state = start_state(ctx, cell, model, masks, optimizer, procedure)
    spark_model = make_spark_model(model, procedure, optimizer,
                                   make_loss(ctx.train.label_smoothing), state)
    groups = DatasetSplit.of(ctx.train_url).row_groups()
    history = []
    for epoch in cell_epochs(ctx, cell):
        stats = train_epoch(sc, spark_model, procedure, groups, epoch,
                            label=f"cell {cell.name} epoch {epoch}")
        result = evaluate_distributed(sc, ctx.spec, model.get_weights(), ctx.val_url,
                                      eval_shards(spark, run), ctx.eval_batch_size,
                                      description=f"eval {cell.name} epoch {epoch}")
        holdout = (evaluate_distributed(
            sc, ctx.spec, model.get_weights(), ctx.holdout_url, eval_shards(spark, run),
            ctx.eval_batch_size, description=f"eval {cell.name} epoch {epoch} on the holdout")
            if ctx.holdout_url else None)
        history.append(epoch_entry(ctx, procedure, stats, result, holdout))
    return finish_cell(ctx, cell, model, masks, start_weights, history,
                       time.monotonic() - start, provenance)
