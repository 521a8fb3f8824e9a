"""Export one finished grid cell of a run as a Keras-native ``.keras`` file.

The file holds the *plain* model (:func:`pipeline.tickets.export.plain_model`: no masked
layers, no ``custom_objects``) with the cell's trained weights and every pruned weight
exactly 0.0, so ``keras.saving.load_model(path)`` opens it wherever Keras runs.

The architecture comes from the cell's stored ticket (its model spec) when it has one;
level-0 cells and controls have no ticket, so theirs comes from the run's
``settings.yaml`` (``model.*``) with the class count from ``data.num_classes`` or, when
that is 0 (all classes), from the dataset the run trained on.
"""

from __future__ import annotations

import posixpath

import yaml

from pipeline.config import from_dict
from pipeline.data.dataset import IngestedDataset
from pipeline.experiment.cells import grid_cells
from pipeline.experiment.run_layout import (
    GRID_DIR,
    REPLICATE_DIR,
    REPLICATE_NAME,
    SETTINGS,
    RunLayout,
)
from pipeline.experiment.settings import PruneJobSettings
from pipeline.models.spec import ModelSpec
from pipeline.store import ArtifactStore, StoreError, normalize_url
from pipeline.tickets.controls import TICKET
from pipeline.tickets.export import ExportError, plain_model, save_model
from pipeline.tickets.storage import masks_from_bytes
from pipeline.train.checkpoints import CorruptCheckpoint, load_checkpoint

__all__ = ["ExportError", "export_keras"]



def _open_run(run_url: str, replicate: int | None) -> tuple[PruneJobSettings, RunLayout]:
    """The run's settings and the layout of the directory that holds its ``grid/``.

    ``run_url`` is a run directory (cells below ``replicate-<i>/``, or directly below it in
    runs made before replicates) or one replicate's own directory.
    """
    url = normalize_url(run_url).rstrip("/")
    run = RunLayout(url)
    if not run.store.is_dir():
        raise ExportError(f"run directory {url} does not exist")
    settings_store, cells = run.store, None
    if run.store.exists(SETTINGS):
        index = replicate or 0
        if run.store.is_dir(REPLICATE_DIR.format(index)):
            cells = run.replicate(index)
        elif index == 0 and run.store.is_dir(GRID_DIR):
            cells = run
        else:
            raise ExportError(f"run {url} has no replicate {index} (no replicate-{index}/)")
    else:
        parent, base = posixpath.split(url)
        match = REPLICATE_NAME.match(base)
        if not match or not ArtifactStore(parent).exists(SETTINGS):
            raise ExportError(f"{url} is not a run directory of prune_imagenet "
                              f"(no {SETTINGS})")
        if replicate is not None and replicate != int(match.group(1)):
            raise ExportError(f"{url} is replicate {match.group(1)}, not {replicate}")
        settings_store, cells = ArtifactStore(parent), run
    settings = from_dict(PruneJobSettings, yaml.safe_load(settings_store.read_text(SETTINGS)))
    return settings, cells


def _num_classes(settings: PruneJobSettings) -> int:
    if settings.data.num_classes > 0:
        return settings.data.num_classes

    try:
        return len(IngestedDataset(settings.data.url).classes)
    except Exception as exc:  # noqa: BLE001 - whatever the failure, the count is unknown
        raise ExportError(f"cannot tell the number of classes: data.num_classes is 0 and "
                          f"the dataset {settings.data.url} cannot be read ({exc})") from exc


def _model_spec(cell_dir: ArtifactStore, settings: PruneJobSettings) -> ModelSpec:
    """The plain model's spec: the ticket's own record when the cell has one, else the
    run's settings."""
    if cell_dir.exists(RunLayout.CELL_TICKET, "ticket.json"):
        meta = cell_dir.read_json(RunLayout.CELL_TICKET, "ticket.json")
        stored = dict(meta.get("settings", {}).get("model") or {})
        stored.pop("masked", None)  # MaskedSpec.to_dict marks the masked twin
        if stored:
            return ModelSpec(**stored)
    m = settings.model
    return ModelSpec(m.name, m.image_size, _num_classes(settings), alpha=m.alpha,
                     bn_momentum=m.bn_momentum, grayscale=m.grayscale)


def export_keras(run_url: str, cell_name: str, output: str,
                 replicate: int | None = None) -> str:
    """Write finished cell ``cell_name`` (e.g. ``L2-k1-none``) of the run at ``run_url`` to
    ``output`` (a ``.keras`` path or URL) as a plain Keras model; returns the output URL.

    ``replicate`` picks one replicate of a run (default 0); a replicate's own directory may
    be given as ``run_url`` instead. Raises :class:`ExportError` (one line) for a missing
    run, an unknown or unfinished cell, or weights that do not fit the model.
    """

    if not output.endswith(".keras"):
        raise ExportError(f"output {output} must end in .keras (Keras' native format)")
    settings, layout = _open_run(run_url, replicate)
    cells = {c.name: c for c in grid_cells(settings)}
    if cell_name not in cells:
        raise ExportError(f"unknown cell {cell_name!r}: the run's cells are {', '.join(cells)} "
                          f"(cell names look like L2-k1-{TICKET}: level, rewind epoch, control)")
    cell = cells[cell_name]
    where = f"cell {cell.name} of {layout.url}"
    if not layout.store.exists(*layout.cell_result(cell)):
        raise ExportError(f"{where} is not finished (no result.json); rerun prune_imagenet "
                          f"to train it")
    row = layout.store.read_json(*layout.cell_result(cell))
    if row.get("status") != "ok":
        error = (str(row.get("error") or "").strip().splitlines() or ["no error recorded"])[-1]
        raise ExportError(f"{where} did not finish (status {row.get('status')}: {error})")
    cell_dir = layout.cell_dir(cell)
    try:
        weights = load_checkpoint(cell_dir, layout.CELL_WEIGHTS)
        masks = masks_from_bytes(cell_dir.read_bytes(layout.CELL_MASKS))
    except (CorruptCheckpoint, StoreError) as exc:
        raise ExportError(f"{where}: {exc}") from exc
    model = plain_model(_model_spec(cell_dir, settings), weights, masks)
    return save_model(model, output)
