"""Checks that run before any training, so a mistake costs seconds, not a cluster-hour."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from pipeline.data.dataset import DatasetError, IngestedDataset
from pipeline.experiment.settings import PruneJobSettings
from pipeline.models import list_models
from pipeline.tickets.controls import list_controls


class PreflightError(ValueError):
    """The settings or the dataset cannot work; the message names the setting."""


@dataclass(frozen=True)
class DatasetFacts:
    """What the job uses of its dataset: a small, picklable view of an IngestedDataset."""

    url: str
    train_url: str
    val_url: str
    image_size: int
    num_classes: int
    train_rows: int
    val_rows: int
    # data.holdout_per_class > 0: train_url/train_rows are the train split less the holdout
    # (pipeline.experiment.holdout_stage), and this is the holdout; "" without one
    holdout_url: str = ""
    holdout_rows: int = 0

    @classmethod
    def of(cls, dataset: IngestedDataset, train_split: str, val_split: str) -> DatasetFacts:
        return cls(
            url=dataset.url,
            train_url=dataset.split(train_split).url,
            val_url=dataset.split(val_split).url,
            image_size=dataset.image_size,
            num_classes=len(dataset.classes),
            train_rows=dataset.rows(train_split),
            val_rows=dataset.rows(val_split),
        )


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise PreflightError(message)


def check_settings(s: PruneJobSettings) -> None:
    """What each section cannot check alone (it checks its own values when built)."""
    _check(bool(s.data.url), "data.url: not set; point it at the output of "
           "jobs/ingest_imagenet.py (--set data.url=...)")
    # the model registry loads Keras, which the settings never import
    _check(s.model.name in list_models(),
           f"model.name: unknown model {s.model.name!r} (known: {', '.join(list_models())})")
    _check(s.train.round_images_per_worker >= s.train.batch_size,
           "train.round_images_per_worker: must be at least train.batch_size")
    for k in s.rewind.epochs:
        _check(0 <= k < s.train.epochs,
               f"rewind.epochs: {k} is outside the dense training (0..{s.train.epochs - 1}: 0 "
               "is the initialization, and a cell rewound to k trains epochs k+1.."
               f"{s.train.epochs})")
    if s.stability.enabled:
        check_stability(s)
    for control in s.grid.controls:
        _check(control in list_controls(),
               f"grid.controls: unknown control {control!r} (known: {', '.join(list_controls())})")
    _check(len(set(s.grid.controls)) == len(s.grid.controls),
           f"grid.controls: duplicates in {s.grid.controls}")
    _check(not s.tracking.mlflow_uri or importlib.util.find_spec("mlflow") is not None,
           "tracking.mlflow_uri: MLflow is not installed; pip install 'lottery-spark[tracking]'"
           " (mlflow-skinny) on the driver")


def check_stability(s: PruneJobSettings) -> None:
    """The instability analysis's rewind points lie inside training; its tickets exist."""
    epochs = s.stability.rewind_epochs(s.rewind.epochs)
    for k in epochs:
        _check(0 <= k < s.train.epochs,
               f"stability.epochs: {k} is outside the dense training (0..{s.train.epochs - 1})")
    if "tickets" in s.stability.subjects:
        late = [k for k in epochs if k not in s.rewind.epochs]
        _check(not late, f"stability.epochs: tickets exist only at rewind.epochs "
               f"{s.rewind.epochs}, not at {late}")
        high = [level for level in s.stability.levels if level > s.prune.levels]
        _check(not high, f"stability.levels: {high} above prune.levels {s.prune.levels}")


def check_dataset(s: PruneJobSettings) -> DatasetFacts:
    """The dataset exists, is an ingest output, and fits the model settings."""
    dataset = IngestedDataset(s.data.url)
    try:
        dataset.validate()
    except DatasetError as exc:
        raise PreflightError(f"data.url: {exc}") from exc
    facts = DatasetFacts.of(dataset, s.data.train_split, s.data.val_split)
    _check(s.model.image_size <= facts.image_size,
           f"model.image_size: {s.model.image_size} exceeds the dataset's stored image size "
           f"{facts.image_size}; re-ingest with --image-size {s.model.image_size} or lower the "
           "setting")
    if s.data.num_classes:
        _check(s.data.num_classes <= facts.num_classes,
               f"data.num_classes: asks for {s.data.num_classes} classes but {s.data.url} has "
               f"only {facts.num_classes}")
        _check(s.data.num_classes == facts.num_classes,
               f"data.num_classes: {s.data.num_classes} is fewer than the dataset's "
               f"{facts.num_classes} classes; ingest a subset with --classes "
               f"{s.data.num_classes} instead")
    _check(facts.train_rows > 0, f"data.train_split: {s.data.train_split!r} has no rows in "
           f"{s.data.url}")
    workers = max(1, s.train.num_workers)
    _check(facts.train_rows >= workers * s.train.batch_size,
           f"data.train_split: {facts.train_rows} images, fewer than one global batch "
           f"({workers} workers x train.batch_size {s.train.batch_size})")
    held = s.data.holdout_per_class * facts.num_classes
    _check(facts.train_rows - held >= workers * s.train.batch_size,
           f"data.holdout_per_class: {s.data.holdout_per_class} x {facts.num_classes} classes "
           f"leaves {facts.train_rows - held} of {facts.train_rows} training images, fewer "
           f"than one global batch ({workers} workers x train.batch_size "
           f"{s.train.batch_size})")
    _check(facts.val_rows > 0, f"data.val_split: {s.data.val_split!r} has no rows in "
           f"{s.data.url}")
    check_batch_norm_settings(s, facts)
    return facts


def check_batch_norm_settings(s: PruneJobSettings, facts: DatasetFacts) -> None:
    """Network slimming needs BatchNorm scales: refuse it on a model without them."""
    wanted = [name for name, on in (("train.slimming_l1", s.train.slimming_l1),
                                    ("early_bird.channel_ratio", s.early_bird.channel_ratio))
              if on]
    if not wanted:
        return
    from pipeline.models.batch_norm import scale_layers
    from pipeline.models.spec import ModelSpec

    model = ModelSpec(s.model.name, s.model.image_size, facts.num_classes,
                      alpha=s.model.alpha, grayscale=s.model.grayscale).build()
    _check(bool(scale_layers(model)), f"{wanted[0]}: model {s.model.name!r} has no "
           "BatchNormalization scales (network slimming needs them; mobilenet_v2 has one "
           "after every convolution)")


def preflight(s: PruneJobSettings) -> DatasetFacts:
    """All checks; raises PreflightError with one clear line."""
    check_settings(s)
    return check_dataset(s)
