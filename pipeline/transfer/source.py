"""The source run's tickets moved into a transfer replicate: rewind weights and masks.

For every rewind point k the source's ``dense/epoch-k`` weights, with the classifier
replaced for the target, become the replicate's ``transfer/epoch-k``; for every level L
the source's ``masks/L<L>-k<k>`` become the replicate's own masks (classifier per
``transfer.classifier``). Replicate i transfers the source's replicate i. Each file is
written once, atomically, and skipped when present, so a killed import resumes.
"""

from __future__ import annotations

import dataclasses
import logging

from pipeline.experiment.preflight import PreflightError
from pipeline.experiment.run_dir import RunDirectory
from pipeline.experiment.run_layout import RunLayout
from pipeline.models.spec import ModelSpec
from pipeline.seeding import derive_seed
from pipeline.tickets.masked_spec import MaskedSpec
from pipeline.train.checkpoints import has_checkpoint, load_checkpoint, save_checkpoint
from pipeline.transfer.weights import transfer_masks, transfer_weights

log = logging.getLogger(__name__)


def transfer_levels(run: RunDirectory, source_levels: int) -> list[int]:
    """The source levels this run transfers (``transfer.levels``, default all)."""
    chosen = run.settings.transfer.levels or list(range(1, source_levels + 1))
    return sorted(set(chosen))


def check_source(source: RunLayout, replicates: int, levels: list[int],
                 rewinds: list[int]) -> None:
    """Raise PreflightError naming the first source artifact a transfer needs but lacks."""
    for index in range(replicates):
        rep = source.replicate(index)
        for k in rewinds:
            if not has_checkpoint(rep.dense_dir(), rep.dense_weights(k)):
                raise PreflightError(
                    f"transfer.source: {rep.url} has no dense weights of epoch {k} (replicate "
                    f"{index}); is rewind point {k} part of that run, and did it finish?")
            for level in levels:
                if not rep.store.exists(*rep.masks(level, k)):
                    raise PreflightError(
                        f"transfer.source: {rep.url} has no level-{level} masks for rewind "
                        f"point {k} (replicate {index}); did that run finish its grid?")


def import_source(run: RunDirectory, source: RunLayout, spec: ModelSpec, levels: list[int]
                  ) -> None:
    """Write the replicate's transferred rewind weights and masks (missing ones only)."""
    from pipeline.tickets import masked_layers, masks_from_bytes, masks_to_bytes

    # a seed of its own: with as many classes as the source, the replicate's seed would
    # give back the source's initial classifier
    target = dataclasses.replace(
        spec, seed=derive_seed(run.settings.run.seed, "transfer-classifier")).build()
    shapes = {layer.name: tuple(layer.kernel.shape) for layer in
              masked_layers(MaskedSpec(spec).build())}
    how = run.settings.transfer.classifier
    out = run.rewind_dir(transferred=True)
    for k in run.settings.rewind.epochs:
        name = run.dense_weights(k)
        if not has_checkpoint(out, name):
            weights = transfer_weights(load_checkpoint(source.dense_dir(), name), target)
            save_checkpoint(out, weights, name, meta={"epoch": k, "source": source.url})
        for level in levels:
            parts = run.masks(level, k)
            if run.store.exists(*parts):
                continue
            masks = masks_from_bytes(source.store.read_bytes(*source.masks(level, k)))
            seed = derive_seed(run.settings.run.seed, "transfer-classifier-mask", level, k)
            run.store.write_bytes(masks_to_bytes(transfer_masks(masks, shapes, how, seed)),
                                  *parts)
    log.info("transfer: replicate %d holds the source's rewind points %s and levels %s from %s",
             run.replicate_index or 0, run.settings.rewind.epochs, levels, source.url)
