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
from pipeline.experiment.provenance import masks_record_parts, write_masks_record
from pipeline.experiment.run_dir import RunDirectory
from pipeline.models.spec import ModelSpec
from pipeline.store import StoreError
from pipeline.tickets.masked_spec import MaskedSpec
from pipeline.train.checkpoints import checkpoint_record, load_verified

log = logging.getLogger(__name__)


def policy_for(run: RunDirectory):  # noqa: ANN201 - PruningPolicy
    from pipeline.tickets import PruningPolicy

    return PruningPolicy.from_settings(run.settings.prune)


def _masked_model_with(spec: ModelSpec, weights, masks=None):  # noqa: ANN001, ANN202
    from pipeline.tickets import ones_masks, rewind

    model = MaskedSpec(spec).build()
    rewind(model, weights, masks if masks is not None else ones_masks(model))
    return model


def _source_changed(run: RunDirectory, name: tuple[str, ...], level: int, rewind_epoch: int,
                    final_epoch: int, iterative: bool) -> bool:
    """Whether the weights existing masks were computed from have changed since (then they
    are made again, and the cells built on them retrain: see cell_run.finished_result)."""
    record_parts = masks_record_parts(name)
    if not run.store.exists(*record_parts):
        return False  # made before provenance was recorded
    recorded = run.store.read_json(*record_parts).get("source_sha256")
    try:
        if iterative:
            current = checkpoint_record(run.cell_dir(Cell(level - 1, rewind_epoch)),
                                        run.CELL_WEIGHTS)["sha256"]
        else:
            current = checkpoint_record(run.dense_dir(),
                                        run.dense_weights(final_epoch))["sha256"]
    except (StoreError, KeyError, ValueError):
        return False
    if current != recorded:
        log.warning("masks: level %d, rewind %d: the weights they were computed from have "
                    "changed since; computing them again", level, rewind_epoch)
        return True
    return False


def make_level_masks(
    run: RunDirectory, spec: ModelSpec, level: int, rewind_epoch: int, final_epoch: int
) -> tuple[str, ...]:
    """Write (if missing) the masks of ``level`` for the chain rewound to ``rewind_epoch``.

    Returns the masks' path parts below the run directory.
    """
    from pipeline.tickets import masks_at_level, masks_from_bytes, masks_to_bytes

    name = run.masks(level, rewind_epoch)
    iterative = run.settings.prune.method == "imp" and level > 1
    if run.store.exists(*name):
        if not _source_changed(run, name, level, rewind_epoch, final_epoch, iterative):
            return name
    policy = policy_for(run)
    if iterative:
        source = Cell(level - 1, rewind_epoch).name
        trained, digest = load_verified(run.cell_dir(Cell(level - 1, rewind_epoch)),
                                        run.CELL_WEIGHTS)
        previous = masks_from_bytes(run.store.read_bytes(*run.masks(level - 1, rewind_epoch)))
        model = _masked_model_with(spec, trained, previous)
    else:
        source = f"dense epoch {final_epoch}"
        trained, digest = load_verified(run.dense_dir(), run.dense_weights(final_epoch))
        model = _masked_model_with(spec, trained)
    masks = masks_at_level(model, policy, level)
    data = masks_to_bytes(masks)
    # the record first: a mask file without one is never trusted by verify_run
    write_masks_record(run, name, data, source, digest)
    run.store.write_bytes(data, *name)
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
