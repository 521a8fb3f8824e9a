"""Export one finished grid cell of a run as a Keras-native ``.keras`` file or a TFLite file.

The file holds the *plain* model (:func:`pipeline.tickets.export.plain_model`: no masked
layers, no ``custom_objects``) with the cell's trained weights and every pruned weight
exactly 0.0, so ``keras.saving.load_model(path)`` opens it wherever Keras runs. With
``slim`` the channels the ticket left without effect are removed first
(:mod:`pipeline.export.slim`); a ``.tflite`` output is converted with sparse storage and,
optionally, int8 quantization (:mod:`pipeline.export.tflite`). Whatever is exported is
checked on the run's val images against the cell's own model (top-1 of each, largest
output difference), and the figures go beside the file as ``<file>.json``.

The architecture comes from the cell's stored ticket (its model spec) when it has one;
level-0 cells and controls have no ticket, so theirs comes from the run's
``settings.yaml`` (``model.*``) with the class count from ``data.num_classes`` or, when
that is 0 (all classes), from the dataset the run trained on.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from pipeline.data.dataset import IngestedDataset
from pipeline.experiment.cells import grid_cells
from pipeline.experiment.run_dir import read_settings
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

__all__ = ["ExportError", "ExportSummary", "export_cell", "export_keras"]

Format = Literal["keras", "tflite"]
SUFFIX = {"keras": ".keras", "tflite": ".tflite"}


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
    return read_settings(settings_store), cells


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
                     bn_momentum=m.bn_momentum, grayscale=m.grayscale, layout=m.layout)


@dataclass
class ExportSummary:
    """What was exported and how it compares with the cell's own model on val."""

    url: str
    cell: str
    format: str
    bytes: int
    slim: str = ""  # the slimming's one-line account ("" without --slim)
    parameters: int = 0
    flops: int = 0  # multiply-adds per image of the exported model's non-zero weights
    dense_flops: int = 0
    quantize: str | None = None
    runtime: str = "keras"  # what ran the check: Keras, or the TFLite runtime and its kernels
    val_images: int = 0
    top1_cell: float | None = None  # the cell's model (masked, as trained)
    top1_export: float | None = None
    max_abs_diff: float | None = None  # of the outputs (probabilities), over the val images
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"model: {self.url} ({self.bytes:,} bytes, {self.format})"]
        if self.slim:
            out.append(f"slim: {self.slim}")
        out.append(f"multiply-adds per image: {self.flops:,} of {self.dense_flops:,} "
                   f"({100 * self.flops / max(self.dense_flops, 1):.2f}%)")
        if self.val_images:
            out.append(f"val top-1 on {self.val_images} images: cell {100 * self.top1_cell:.2f}%, "
                       f"export {100 * self.top1_export:.2f}% "
                       f"(largest output difference {self.max_abs_diff:.2e}; run by "
                       f"{self.runtime})")
        return out


def _load_cell(run_url: str, cell_name: str, replicate: int | None
               ) -> tuple[PruneJobSettings, ModelSpec, list, dict]:
    """The finished cell's settings, plain model spec, weights and masks."""
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
    return settings, _model_spec(cell_dir, settings), weights, masks


CALIBRATION_IMAGES = 256  # train images that calibrate an int8 file's activation ranges


def _images(settings: PruneJobSettings, spec: ModelSpec, split: str, limit: int
            ) -> tuple[np.ndarray, np.ndarray]:
    from pipeline.data.dataset import DatasetSplit

    try:
        return DatasetSplit(IngestedDataset(settings.data.url), split).load(
            limit=limit or None, image_size=spec.image_size)
    except Exception as exc:  # noqa: BLE001 - whatever the failure, the split cannot be read
        why = ("to check the export; pass --val-images 0 to skip the check" if split == "val"
               else "to calibrate the int8 quantization")
        raise ExportError(f"cannot read the {split} split of {settings.data.url} {why} "
                          f"({exc})") from exc


def export_cell(run_url: str, cell_name: str, output: str, replicate: int | None = None,
                slim: bool = False, quantize: str | None = None,
                val_images: int = 1000) -> ExportSummary:
    """Export finished cell ``cell_name`` of the run at ``run_url`` to ``output`` (its suffix,
    ``.keras`` or ``.tflite``, picks the format) and check it on the first ``val_images``
    val images (0: no check); ``<output>.json`` holds the summary."""
    from pipeline.export.slim import SlimError, slim_model
    from pipeline.export.tflite import TFLiteError, TFLiteModel, to_tflite
    from pipeline.tickets.flops import count_flops

    start = time.monotonic()
    fmt = next((f for f, suffix in SUFFIX.items() if output.endswith(suffix)), None)
    if fmt is None:
        raise ExportError(f"output {output} must end in .keras (Keras' native format) or "
                          f".tflite")
    if quantize is not None and fmt != "tflite":
        raise ExportError("--quantize applies to .tflite outputs only")
    if val_images < 0:
        raise ExportError(f"--val-images must be >= 0, got {val_images}")
    settings, spec, weights, masks = _load_cell(run_url, cell_name, replicate)
    model = plain_model(spec, weights, masks)
    exported, account = model, ""
    if slim:
        try:
            result = slim_model(model)
        except SlimError as exc:
            raise ExportError(f"cannot slim {spec.name}: {exc}") from exc
        exported, account = result.model, result.summary()
    # read before anything is written: a check that cannot run fails the export up front
    x, y = _images(settings, spec, "val", val_images) if val_images else (None, None)
    try:
        if fmt == "tflite":
            representative = None
            if quantize:
                train, _ = _images(settings, spec, "train", CALIBRATION_IMAGES)
                representative = [train[i:i + 32] for i in range(0, len(train), 32)]
            content = to_tflite(exported, sparse=True, quantize=quantize,
                                representative=representative)
            url = _write(content, output)
            runner = TFLiteModel(content)
            predict = runner.predict
        else:
            runner = None
            url = save_model(exported, output)
            content = ArtifactStore(posixpath.dirname(url)).read_bytes(posixpath.basename(url))

            def predict(images):  # noqa: ANN001, ANN202
                return exported.predict(images, batch_size=64, verbose=0)
    except TFLiteError as exc:
        raise ExportError(str(exc)) from exc
    flops = count_flops(exported)
    summary = ExportSummary(url=url, cell=cell_name, format=fmt, bytes=len(content),
                            slim=account, parameters=int(exported.count_params()),
                            flops=flops.flops_remaining,
                            dense_flops=count_flops(model).dense_flops, quantize=quantize)
    if x is not None and len(x):
        ours = np.asarray(model.predict(x, batch_size=64, verbose=0))
        theirs = np.asarray(predict(x))
        summary.val_images = len(x)
        summary.top1_cell = float(np.mean(ours.argmax(1) == y))
        summary.top1_export = float(np.mean(theirs.argmax(1) == y))
        summary.max_abs_diff = float(np.abs(ours - theirs).max())
        if runner is not None:
            summary.runtime = f"ai-edge-litert on {runner.runtime}"
    summary.seconds = round(time.monotonic() - start, 2)
    parent, base = posixpath.split(url)
    ArtifactStore(parent).write_json(asdict(summary), f"{base}.json")
    return summary


def _write(content: bytes, output: str) -> str:
    parent, base = posixpath.split(normalize_url(output))
    return ArtifactStore(parent).write_bytes(content, base)


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
    _, spec, weights, masks = _load_cell(run_url, cell_name, replicate)
    return save_model(plain_model(spec, weights, masks), output)
