"""Training one grid cell: rewind, apply the control, train with the mask held, record it.

The same steps serve both grid modes, and both train with the dense stage's procedure
(:mod:`pipeline.train.procedure`): in ``task`` mode :func:`run_cell_task` runs inside a
Spark task (one cell per task, every replica of every round in turn, data read by that
task straight from the split); in ``data_parallel`` mode the driver trains the cell with
Elephas across all executors (:mod:`pipeline.experiment.data_parallel_cell`). A cell
rewound to epoch k trains epochs k+1..T from step k·S (:func:`start_state`); a transfer
cell trains epochs 1..T from step 0, on the target, from the source's weights. Every
artifact is written atomically and ``result.json`` last, so a cell with a result is
finished and a retried or resumed cell never sees half of an earlier attempt.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import numpy as np

from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.cells import Cell
from pipeline.report.result_row import ResultRow
from pipeline.tensorboard_events import write_scalars
from pipeline.tickets.controls import TICKET
from pipeline.train.checkpoints import load_checkpoint, save_checkpoint
from pipeline.train.procedure import TrainingProcedure

log = logging.getLogger(__name__)

def finished_result(ctx: CellContext, cell: Cell, verify: bool = False) -> dict[str, Any] | None:
    """The stored result row of a finished cell, else None. A finished cell trained on
    another data order (an older version's result) cannot be mixed in: PreflightError.

    With ``verify`` the cell's trained weights must pass their checksum; a corrupt cell is
    reported, its result removed (so it is retrained) and None returned.
    """
    from pipeline.train.checkpoints import CorruptCheckpoint

    layout = ctx.layout
    if not layout.store.exists(*layout.cell_result(cell)):
        return None
    row = layout.store.read_json(*layout.cell_result(cell))
    if row.get("status") != "ok":
        return None
    if row.get("data_order_seed") != ctx.data_order_seed:
        from pipeline.experiment.preflight import PreflightError

        raise PreflightError(
            f"cell {cell.name} in {layout.url} was trained on another data order (seed "
            f"{row.get('data_order_seed')}, this run's is {ctx.data_order_seed}): it comes "
            "from a version before grid.data_order and the fresh-optimizer reset; give this "
            "run a new run.output")
    if verify:
        try:
            load_checkpoint(layout.cell_dir(cell), layout.CELL_WEIGHTS)
        except CorruptCheckpoint as exc:
            log.warning("%s; retraining cell %s", exc, cell.name)
            layout.store.delete(*layout.cell_result(cell))
            return None
        changed = _changed_inputs(ctx, cell, row)
        if changed:
            log.warning("cell %s was trained from a %s that has changed since; retraining it",
                        cell.name, " and a ".join(changed))
            layout.store.delete(*layout.cell_result(cell))
            return None
    return row


def _changed_inputs(ctx: CellContext, cell: Cell, row: dict[str, Any]) -> list[str]:
    """The inputs of a finished cell (rewind checkpoint, mask file) that differ now from
    those it recorded; none when they cannot be read (a stage being redone decides)."""
    from pipeline.experiment.provenance import cell_inputs, stale_inputs
    from pipeline.store import StoreError

    try:
        current = cell_inputs(ctx.layout, cell, ctx.layout.rewind_dir(ctx.transferred))
    except (StoreError, KeyError, ValueError):
        return []
    names = {"rewind": "rewind checkpoint", "masks": "mask file"}
    return [names[k] for k in stale_inputs(row.get("provenance"), current)]


def prepare_model(ctx: CellContext, cell: Cell, model=None):  # noqa: ANN001, ANN201
    """The masked model (``model``, or a new one) at the cell's starting point: masks set,
    weights rewound (or controlled); returns (model, masks, start weights, provenance: the
    SHA-256 of what it read and drew, :mod:`pipeline.experiment.provenance`).

    A level-0 cell keeps every weight (all-ones masks): the unpruned network rewound to k.
    """
    from pipeline.experiment.provenance import sha256
    from pipeline.tickets import apply_control, masks_from_bytes, masks_to_bytes, ones_masks, rewind
    from pipeline.train.checkpoints import load_verified
    from pipeline.weights_npz import weights_to_bytes

    layout = ctx.layout
    model = ctx.spec.build() if model is None else model
    provenance: dict[str, Any] = {}
    if cell.is_reference:
        masks = ones_masks(model)
    else:
        data = layout.store.read_bytes(*layout.masks(cell.level, cell.rewind_epoch))
        masks, provenance["masks"] = masks_from_bytes(data), sha256(data)
    rewind_weights, provenance["rewind"] = load_verified(
        layout.rewind_dir(ctx.transferred), layout.dense_weights(cell.rewind_epoch))
    masks_used, start = masks, rewind_weights
    if cell.control != TICKET:
        masks_used, start = apply_control(cell.control, model, masks, rewind_weights,
                                          cell.seed(ctx.run_seed),
                                          ctx.policy.get("granularity", "weights"))
        provenance["control_masks"] = sha256(masks_to_bytes(masks_used))
        provenance["control_weights"] = sha256(weights_to_bytes(start))
    rewind(model, start, masks_used)
    return model, masks_used, start, provenance


def start_state(ctx: CellContext, cell: Cell, model, masks, optimizer,  # noqa: ANN001
                procedure: TrainingProcedure) -> list[np.ndarray]:
    """The optimizer state a cell rewound to k starts from: its step counter at ``k·S``
    (the schedule continues from there), moments reset or restored (``rewind.optimizer``).
    A reset state is a fresh optimizer's: zero moments, and the optimizer is made with
    :func:`moments_origin` so that Adam's bias correction counts from the rewind.
    A transfer cell starts a fresh schedule on the target: step 0, zero moments."""
    from pipeline.train.optimizer_state import fresh_state, restored_state

    k = cell.rewind_epoch
    if ctx.transferred:
        return fresh_state(model, optimizer, 0)
    if ctx.rewind_optimizer == "restore" and k > 0:
        saved = load_checkpoint(ctx.layout.dense_dir(), ctx.layout.dense_optimizer(k))
        state = restored_state(model, optimizer, saved, masks)
        if int(state[0]) != procedure.step_at(k):
            raise ValueError(f"the dense optimizer state of epoch {k} is at step "
                             f"{int(state[0])}, not {procedure.step_at(k)} (k x "
                             f"{procedure.steps_per_epoch} steps per epoch)")
        return state
    return fresh_state(model, optimizer, procedure.step_at(k))


def moments_origin(ctx: CellContext, cell: Cell, procedure: TrainingProcedure) -> int:
    """The step from which the cell's optimizer counts its moments' age (Adam's bias
    correction): the rewind step ``k·S`` for a reset optimizer (a new optimizer, as
    open_lth's), 0 when the moments are restored or start with a transfer's schedule."""
    if ctx.transferred or ctx.rewind_optimizer == "restore":
        return 0
    return procedure.step_at(cell.rewind_epoch)


def cell_epochs(ctx: CellContext, cell: Cell) -> range:
    """The epochs a cell trains, numbered as in the dense run: k+1 .. T (a transfer cell:
    1 .. T, its whole budget on the target)."""
    first = 1 if ctx.transferred else cell.rewind_epoch + 1
    return range(first, ctx.train.epochs + 1)


def epoch_entry(ctx: CellContext, procedure: TrainingProcedure, stats,  # noqa: ANN001
                result, holdout=None) -> dict[str, Any]:  # noqa: ANN001
    """One history entry: the epoch's training loss, steps, first learning rate and val
    (and the holdout's figures, when the run has one)."""
    from pipeline.train.optimizers import make_schedule

    schedule = make_schedule(ctx.train, procedure.steps_per_epoch)
    return {"epoch": stats.epoch, "loss": float(stats.loss), "first_step": stats.first_step,
            "last_step": stats.last_step,
            "learning_rate": float(schedule(stats.first_step)), **result.to_dict(),
            **(holdout.holdout_dict() if holdout is not None else {})}


def check_zeros(model) -> None:  # noqa: ANN001
    """Raise if any masked kernel entry is not exactly zero (the ticket invariant)."""
    from pipeline.tickets import masked_layers

    for layer in masked_layers(model):
        mask = layer.mask.numpy() != 0
        stray = np.count_nonzero(layer.kernel.numpy()[~mask])
        if stray:
            raise AssertionError(f"{layer.name}: {stray} masked weights are not zero")


def finish_cell(
    ctx: CellContext, cell: Cell, model, masks, start_weights,  # noqa: ANN001
    history: list[dict[str, Any]], seconds: float,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the invariant, save weights (and the ticket), write ``result.json`` last."""
    from pipeline.tickets import (
        PruningPolicy,
        make_ticket,
        masks_to_bytes,
        plain_weights,
        save_ticket,
    )
    from pipeline.tickets.sparsity import sparsity_report

    check_zeros(model)
    layout = ctx.layout
    store = layout.cell_dir(cell)
    policy = PruningPolicy.from_dict(ctx.policy)
    save_checkpoint(store, plain_weights(model), layout.CELL_WEIGHTS, meta={"cell": cell.name})
    store.write_bytes(masks_to_bytes(masks), layout.CELL_MASKS)  # controls' own masks too
    report = sparsity_report(model, policy, masks)
    store.write_text(report.to_csv(), layout.CELL_SPARSITY)
    if cell.control == TICKET and not cell.is_reference:
        ticket = make_ticket(model, policy, masks, start_weights,
                             settings={"cell": cell.name, "model": ctx.spec.to_dict(),
                                       "level": cell.level, "rewind_epoch": cell.rewind_epoch})
        save_ticket(store, ticket, layout.CELL_TICKET)
    row = ResultRow.ok(cell.name, cell.level, cell.rewind_epoch, cell.control, ctx.run_seed,
                       report.summary(), history, seconds, replicate=ctx.replicate,
                       control_seed=control_seed(ctx, cell),
                       data_order_seed=ctx.data_order_seed).to_dict()
    row["history"] = history
    row["provenance"] = provenance
    write_scalars(layout.store, cell.name, history)
    layout.store.write_json(row, *layout.cell_result(cell))
    return row


def train_in_task(ctx: CellContext, cell: Cell) -> dict[str, Any]:
    """Train a cell in this process with the dense stage's procedure (every replica in
    turn), reading the split itself; returns its row."""
    from pipeline.data.dataset import DatasetSplit
    from pipeline.seeding import use_op_determinism
    from pipeline.train.evaluation import evaluate_local
    from pipeline.train.in_process import InProcessRounds, compiled_model

    # No reseeding: nothing random runs in the train step, the controls seed their own
    # draws, and reseeding TensorFlow would retrace the worker's compiled model.
    use_op_determinism(ctx.deterministic)
    start = time.monotonic()
    procedure = ctx.procedure()
    model, optimizer = compiled_model(ctx.spec, ctx.train, procedure.steps_per_epoch,
                                      head_only=ctx.head_only,
                                      moments_from=moments_origin(ctx, cell, procedure))
    model, masks, start_weights, provenance = prepare_model(ctx, cell, model)
    trainer = InProcessRounds(model, optimizer, procedure, read_workers=ctx.reader_workers)
    trainer.optimizer_state = start_state(ctx, cell, model, masks, optimizer, procedure)
    groups = DatasetSplit.of(ctx.train_url).row_groups()
    history = []
    for epoch in cell_epochs(ctx, cell):
        stats = trainer.train_epoch(groups, epoch)
        result = evaluate_local(model, ctx.val_url, ctx.spec.image_size, ctx.eval_batch_size)
        holdout = (evaluate_local(model, ctx.holdout_url, ctx.spec.image_size,
                                  ctx.eval_batch_size) if ctx.holdout_url else None)
        history.append(epoch_entry(ctx, procedure, stats, result, holdout))
    return finish_cell(ctx, cell, model, masks, start_weights, history,
                       time.monotonic() - start, provenance)


def failure_row(ctx: CellContext, cell: Cell, error: str) -> dict[str, Any]:
    """The row of a cell that could not be trained."""
    return ResultRow.failed(cell.name, cell.level, cell.rewind_epoch, cell.control,
                            ctx.run_seed, error, replicate=ctx.replicate,
                            control_seed=control_seed(ctx, cell),
                            data_order_seed=ctx.data_order_seed).to_dict()


def control_seed(ctx: CellContext, cell: Cell) -> int | None:
    """A control's own draw seed (None for tickets and level-0 cells)."""
    return None if cell.control == TICKET else cell.seed(ctx.run_seed)


def run_cell_task(cell: Cell, ctx: CellContext) -> dict[str, Any]:
    """Spark task body: a finished cell is returned as stored; errors become a failed row.

    Python errors are caught (and retried by the driver) rather than raised, so one bad
    cell never aborts the others; a lost executor is still retried by Spark itself.
    """
    from pipeline.train.devices import configure_task_devices

    done = finished_result(ctx, cell)
    if done is not None:
        return done
    try:
        configure_task_devices(ctx.train.mixed_precision)
        return train_in_task(ctx, cell)
    except Exception:  # noqa: BLE001 - reported in the results table
        return failure_row(ctx, cell, traceback.format_exc(limit=8))
