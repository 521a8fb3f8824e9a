"""What an executor needs to train a grid cell: small, picklable, derived from the run.

Made by :meth:`pipeline.experiment.run_dir.RunDirectory.to_remote`, never by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.experiment.run_layout import RunLayout
from pipeline.experiment.settings import PruneJobSettings, TrainSettings
from pipeline.tickets.masked_spec import MaskedSpec


@dataclass(frozen=True)
class CellContext:
    layout: RunLayout
    train_url: str
    val_url: str
    spec: MaskedSpec
    num_classes: int
    train_images: int
    train: TrainSettings
    batch_size: int  # per grid task (task mode)
    policy: dict[str, Any]
    run_seed: int
    reader_workers: int
    eval_batch_size: int
    deterministic: bool


def cell_batch_size(settings: PruneJobSettings, dense_workers: int) -> int:
    """A grid task's batch: by default the dense model's global batch (each Elephas step
    averages ``dense_workers`` batches), so a ticket takes as many optimizer steps per epoch,
    under the same schedule, as the dense model it is compared with."""
    return settings.grid.batch_size or settings.train.batch_size * dense_workers
