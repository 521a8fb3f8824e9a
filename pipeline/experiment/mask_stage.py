"""Stage 2 (on the driver): magnitude masks for each level of each rewind chain.

Level 1 prunes the trained dense weights. With ``prune.method: imp`` level ``L > 1``
prunes the trained ticket of level ``L - 1`` *of the same rewind chain* (its surviving
weights after retraining), so those masks can only be made after that wave of the grid;
with ``oneshot`` every level prunes the dense weights straight to ``(1 - f) ** L``.
Masks are written to ``masks/L<level>-k<rewind>.npz`` and never recomputed once there.
"""

from __future__ import annotations

import logging

from pipeline.experiment.cells import Cell
from pipeline.experiment.run_dir import RunDirectory
from pipeline.models.spec import ModelSpec
from pipeline.tickets.masked_spec import MaskedSpec
from pipeline.train.checkpoints import load_checkpoint

log = logging.getLogger(__name__)


def policy_for(run: RunDirectory):  # noqa: ANN201 - PruningPolicy
    from pipeline.tickets import PruningPolicy

    return PruningPolicy.from_settings(run.settings.prune)


def _masked_model_with(spec: ModelSpec, weights, masks=None):  # noqa: ANN001, ANN202
    from pipeline.tickets import ones_masks, rewind

    model = MaskedSpec(spec).build()
    rewind(model, weights, masks if masks is not None else ones_masks(model))
    return model


def make_level_masks(
    run: RunDirectory, spec: ModelSpec, level: int, rewind_epoch: int, final_epoch: int
) -> tuple[str, ...]:
    """Write (if missing) the masks of ``level`` for the chain rewound to ``rewind_epoch``.

    Returns the masks' path parts below the run directory.
    """
    from pipeline.tickets import masks_at_level, masks_from_bytes, masks_to_bytes

    name = run.masks(level, rewind_epoch)
    if run.store.exists(*name):
        return name
    policy = policy_for(run)
    iterative = run.settings.prune.method == "imp" and level > 1
    if iterative:
        ticket_dir = run.cell_dir(Cell(level - 1, rewind_epoch))
        trained = load_checkpoint(ticket_dir, run.CELL_WEIGHTS)
        previous = masks_from_bytes(run.store.read_bytes(*run.masks(level - 1, rewind_epoch)))
        model = _masked_model_with(spec, trained, previous)
    else:
        model = _masked_model_with(spec, load_checkpoint(run.dense_dir(),
                                                         run.dense_weights(final_epoch)))
    masks = masks_at_level(model, policy, level)
    run.store.write_bytes(masks_to_bytes(masks), *name)
    kept = sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
    log.info("masks: level %d, rewind %d: %.2f%% of masked kernels kept (%s)", level,
             rewind_epoch, 100 * kept, f"from the level {level - 1} ticket" if iterative
             else "from the dense weights")
    emptied = sorted(layer for layer, mask in masks.items() if not mask.any())
    if emptied:
        # A layer with no weights left cuts the network: every cell of this level is then
        # a broken model, not a ticket (its rows say so: layers_emptied). Global pruning can
        # do this to small depthwise layers.
        log.warning("masks: level %d, rewind %d: %d layer(s) pruned to zero weights (%s); "
                    "consider prune.min_layer_density or prune.strategy=layerwise", level,
                    rewind_epoch, len(emptied),
                    ", ".join(emptied[:5]) + (" ..." if len(emptied) > 5 else ""))
    return name
