"""What an executor needs to train a grid cell: small, picklable, derived from the run.

Made by :meth:`pipeline.experiment.run_dir.RunDirectory.to_remote`, never by hand. Cells
train with the dense stage's procedure: as many replicas as it had workers, each with
``train.batch_size``, so a ticket takes the dense model's steps under its schedule.

A transfer run (:mod:`pipeline.transfer`) sets ``transfer_mode``: its cells start from the
source run's weights moved to the target (``transfer/`` of the layout), train epochs
1..T from step 0, and with ``head_only`` train the classifier alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.experiment.run_layout import RunLayout
from pipeline.experiment.settings import TrainSettings
from pipeline.tickets.masked_spec import MaskedSpec
from pipeline.train.procedure import TrainingProcedure


@dataclass(frozen=True)
class CellContext:
    layout: RunLayout
    train_url: str
    val_url: str
    spec: MaskedSpec
    num_classes: int
    train_images: int
    train: TrainSettings
    workers: int  # the dense stage's Elephas workers: every cell trains with as many replicas
    rewind_optimizer: str  # rewind.optimizer: reset or restore
    policy: dict[str, Any]
    run_seed: int  # the replicate's seed
    replicate: int
    reader_workers: int
    eval_batch_size: int
    deterministic: bool
    transfer_mode: str | None = None  # None, or transfer.mode: full | head_only
    data_order: str = "fresh"  # grid.data_order: fresh | replay
    holdout_url: str = ""  # data.holdout_per_class > 0: evaluated every epoch, early stops
    stability_copy: int | None = None  # the instability analysis's copy 0 or 1

    @property
    def data_order_seed(self) -> int:
        """The seed of the batch order every cell of this replicate trains on: the dense
        run's own (``replay``) or one drawn for the grid (``fresh``); never a cell's. The
        two copies of the instability analysis each draw their own, whatever the grid's."""
        from pipeline.seeding import derive_seed

        if self.stability_copy is not None:
            return derive_seed(self.run_seed, "stability", "data order", self.stability_copy)
        if self.data_order == "replay":
            return self.run_seed
        return derive_seed(self.run_seed, "grid", "data order")

    @property
    def transferred(self) -> bool:
        return self.transfer_mode is not None

    @property
    def head_only(self) -> bool:
        return self.transfer_mode == "head_only"

    def procedure(self) -> TrainingProcedure:
        """The dense stage's training procedure, on this replicate's grid data order."""
        return TrainingProcedure.of(self.train, self.spec, self.train_url, self.num_classes,
                                    self.train_images, self.workers, self.data_order_seed,
                                    self.deterministic)
