"""Checks that run before any training, so a mistake costs seconds, not a cluster-hour."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.data.readers import DatasetError, read_classes, split_url, validate_dataset
from pipeline.experiment.settings import CONTROL_NAMES, PruneJobSettings
from pipeline.models import list_models
from pipeline.train.schedules import SCHEDULE_KINDS

OPTIMIZERS = ("sgd", "rmsprop", "adam")


class PreflightError(ValueError):
    """The settings or the dataset cannot work; the message names the setting."""


@dataclass(frozen=True)
class DatasetFacts:
    url: str
    train_url: str
    val_url: str
    image_size: int
    num_classes: int
    train_rows: int
    val_rows: int


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise PreflightError(message)


def check_settings(s: PruneJobSettings) -> None:
    """Everything that can be checked without reading the dataset."""
    _check(bool(s.data.url), "data.url: not set; point it at the output of "
           "jobs/ingest_imagenet.py (--set data.url=...)")
    _check(s.model.name in list_models(),
           f"model.name: unknown model {s.model.name!r} (known: {', '.join(list_models())})")
    _check(s.model.alpha > 0, f"model.alpha: must be positive, got {s.model.alpha}")
    _check(s.model.bn_momentum is None or 0 < s.model.bn_momentum < 1,
           f"model.bn_momentum: must be in (0, 1), got {s.model.bn_momentum}")
    _check(s.train.epochs >= 1, f"train.epochs: must be at least 1, got {s.train.epochs}")
    _check(s.train.batch_size >= 1, f"train.batch_size: must be at least 1, got "
           f"{s.train.batch_size}")
    _check(s.train.optimizer.lower() in OPTIMIZERS,
           f"train.optimizer: {s.train.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    _check(s.train.lr_schedule in SCHEDULE_KINDS,
           f"train.lr_schedule: {s.train.lr_schedule!r} is not one of {', '.join(SCHEDULE_KINDS)}")
    _check(s.train.learning_rate > 0, "train.learning_rate: must be positive")
    _check(0 <= s.train.label_smoothing < 1, "train.label_smoothing: must be in [0, 1)")
    _check(s.train.round_images_per_worker >= s.train.batch_size,
           "train.round_images_per_worker: must be at least train.batch_size")
    _check(s.prune.method in ("imp", "oneshot"),
           f"prune.method: {s.prune.method!r} is not imp or oneshot")
    _check(s.prune.strategy in ("global", "layerwise"),
           f"prune.strategy: {s.prune.strategy!r} is not global or layerwise")
    _check(s.prune.levels >= 1, f"prune.levels: must be at least 1, got {s.prune.levels}")
    _check(0 < s.prune.fraction_per_level < 1,
           f"prune.fraction_per_level: must be in (0, 1), got {s.prune.fraction_per_level}")
    epochs = s.rewind.epochs
    _check(bool(epochs), "rewind.epochs: give at least one rewind point, e.g. [0]")
    _check(len(set(epochs)) == len(epochs), f"rewind.epochs: duplicates in {epochs}")
    for k in epochs:
        _check(0 <= k <= s.train.epochs,
               f"rewind.epochs: {k} is outside the dense training (epochs 0..{s.train.epochs}; "
               "0 is the initialization)")
    for control in s.grid.controls:
        _check(control in CONTROL_NAMES,
               f"grid.controls: unknown control {control!r} (known: {', '.join(CONTROL_NAMES)})")
    _check(len(set(s.grid.controls)) == len(s.grid.controls),
           f"grid.controls: duplicates in {s.grid.controls}")
    _check(s.grid.mode in ("task", "data_parallel"),
           f"grid.mode: {s.grid.mode!r} is not task or data_parallel")
    _check(s.grid.max_failures >= 1, "grid.max_failures: must be at least 1")
    _check(s.grid.task_cpus >= 1, "grid.task_cpus: must be at least 1")
    _check(s.grid.batch_size >= 0, "grid.batch_size: must be 0 (the dense global batch) or more")


def check_dataset(s: PruneJobSettings) -> DatasetFacts:
    """The dataset exists, is an ingest output, and fits the model settings."""
    try:
        info = validate_dataset(s.data.url)
        classes = read_classes(s.data.url)
    except DatasetError as exc:
        raise PreflightError(f"data.url: {exc}") from exc
    stored = int(info.get("image_size", 0))
    rows = info.get("rows", {})
    _check(s.model.image_size <= stored,
           f"model.image_size: {s.model.image_size} exceeds the dataset's stored image size "
           f"{stored}; re-ingest with --image-size {s.model.image_size} or lower the setting")
    if s.data.num_classes:
        _check(s.data.num_classes <= len(classes),
               f"data.num_classes: asks for {s.data.num_classes} classes but {s.data.url} has "
               f"only {len(classes)}")
        _check(s.data.num_classes == len(classes),
               f"data.num_classes: {s.data.num_classes} is fewer than the dataset's "
               f"{len(classes)} classes; ingest a subset with --classes "
               f"{s.data.num_classes} instead")
    train_rows = int(rows.get(s.data.train_split, 0))
    val_rows = int(rows.get(s.data.val_split, 0))
    _check(train_rows > 0, f"data.train_split: {s.data.train_split!r} has no rows in "
           f"{s.data.url}")
    _check(val_rows > 0, f"data.val_split: {s.data.val_split!r} has no rows in {s.data.url}")
    return DatasetFacts(
        url=s.data.url,
        train_url=split_url(s.data.url, s.data.train_split),
        val_url=split_url(s.data.url, s.data.val_split),
        image_size=stored,
        num_classes=len(classes),
        train_rows=train_rows,
        val_rows=val_rows,
    )


def preflight(s: PruneJobSettings) -> DatasetFacts:
    """All checks; raises PreflightError with one clear line."""
    check_settings(s)
    return check_dataset(s)
