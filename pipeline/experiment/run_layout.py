"""Where everything lives below one run directory: the only place that spells its paths.

A :class:`RunLayout` is just the run's URL, so it pickles into executor tasks; the driver's
:class:`~pipeline.experiment.run_dir.RunDirectory` is a layout with the settings beside it.
Directory methods return an :class:`~pipeline.store.ArtifactStore`; file methods return the
file's path parts below the run directory (``store.read_bytes(*layout.masks(1, 0))``) or,
for checkpoints, the checkpoint name inside its directory.

::

    settings.yaml  timings.json  results.{parquet,csv}  summary.{parquet,csv}
    history.parquet  report.md  figures/
    splits/train/  splits/holdout/        (data.holdout_per_class > 0: the train split
                                           less the holdout, and the holdout; every
                                           replicate trains and early-stops on these)
    replicate-<i>/                        (one independent experiment each, i = 0, 1, ...)
        dense/epoch-EEE.npz  dense/optimizer-EEE.npz      (E = 0 is the initialization)
        masks/L<level>-k<rewind>.npz
        grid/L<level>/k<rewind>/<control>/  weights.npz masks.npz sparsity.csv ticket/
                                            result.json
        grid/histories.json
        stability/L<level>/k<rewind>/copy-<c>/   (instability analysis: the two copies,
                                                 laid out like cells)
        stability/L<level>/k<rewind>/path.json   (their path: top-1 and loss at every alpha)
        transfer/epoch-EEE.npz  (transfer runs: the source's rewind weights, new classifier)
        transfer/shots/         (transfer runs with few-shot: this replicate's training subset)
        superseded/<time>/{masks,grid}/  (made from dense weights later recomputed)

A replicate's directory is itself laid out by a :class:`RunLayout`
(:meth:`RunLayout.replicate`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipeline.store import ArtifactStore

if TYPE_CHECKING:
    from pipeline.experiment.cells import Cell

SETTINGS = "settings.yaml"
TIMINGS = "timings.json"
DENSE_DIR = "dense"
MASKS_DIR = "masks"
GRID_DIR = "grid"
STABILITY_DIR = "stability"
TRANSFER_DIR = "transfer"
SPLITS_DIR = "splits"  # the holdout carve (pipeline.data.holdout)
REPLICATE_DIR = "replicate-{}"  # .format(index)
REPLICATE_NAME = re.compile(r"^replicate-(\d+)$")


class RunLayout:
    """Paths of one run, from its URL alone."""

    # files inside a cell's directory
    CELL_WEIGHTS = "weights"  # checkpoint name: the trained weights
    CELL_MASKS = "masks.npz"  # the masks the cell trained under (a control's own)
    CELL_SPARSITY = "sparsity.csv"
    CELL_TICKET = "ticket"  # tickets only: compact mask + rewind weights

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"RunLayout({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunLayout) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.url)

    def replicate(self, index: int) -> RunLayout:
        """The layout of replicate ``index`` (0-based) below this run directory."""
        return RunLayout(f"{self.url.rstrip('/')}/{REPLICATE_DIR.format(index)}")

    # -- dense stage ---------------------------------------------------------------------
    def dense_dir(self) -> ArtifactStore:
        return self.store.child(DENSE_DIR)

    @staticmethod
    def dense_weights(epoch: int) -> str:
        """Checkpoint name (in :meth:`dense_dir`) of the weights after ``epoch``."""
        return f"epoch-{epoch:03d}"

    @staticmethod
    def dense_optimizer(epoch: int) -> str:
        """Checkpoint name (in :meth:`dense_dir`) of the optimizer state after ``epoch``."""
        return f"optimizer-{epoch:03d}"

    def rewind_dir(self, transferred: bool = False) -> ArtifactStore:
        """Where the rewind weights (checkpoints :meth:`dense_weights`) of cells come from:
        the dense stage, or in a transfer run the source's weights moved to the target."""
        return self.store.child(TRANSFER_DIR) if transferred else self.dense_dir()

    def shots_url(self) -> str:
        """A transfer run's few-shot training subset (an ingest output of its own)."""
        return self.store.url(TRANSFER_DIR, "shots")

    def splits_url(self) -> str:
        """The run's holdout carve: ``train/`` without the holdout and ``holdout/``
        (:mod:`pipeline.data.holdout`), shared by its replicates."""
        return self.store.url(SPLITS_DIR)

    # -- masks and grid ------------------------------------------------------------------
    @staticmethod
    def masks(level: int, rewind_epoch: int) -> tuple[str, ...]:
        """The chain's masks for ``level`` (shared by the ticket and its controls)."""
        return (MASKS_DIR, f"L{level}-k{rewind_epoch}.npz")

    @staticmethod
    def cell_parts(cell: Cell) -> tuple[str, ...]:
        if cell.copy is not None:
            return (*RunLayout.stability_path(cell.level, cell.rewind_epoch)[:-1],
                    f"copy-{cell.copy}")
        return (GRID_DIR, f"L{cell.level}", f"k{cell.rewind_epoch}", cell.control)

    @staticmethod
    def stability_path(level: int, rewind_epoch: int) -> tuple[str, ...]:
        """The evaluated path between the two copies of level ``level`` from ``rewind_epoch``
        (written last, so its presence means the path is finished)."""
        return (STABILITY_DIR, f"L{level}", f"k{rewind_epoch}", "path.json")

    def cell_dir(self, cell: Cell) -> ArtifactStore:
        """Directory of one cell's artifacts."""
        return self.store.child(*self.cell_parts(cell))

    @staticmethod
    def cell_result(cell: Cell) -> tuple[str, ...]:
        """The cell's ``result.json``: written last, so its presence means finished."""
        return (*RunLayout.cell_parts(cell), "result.json")

    @staticmethod
    def chain_after(level: int, rewind_epoch: int) -> list[tuple[str, ...]]:
        """What the chain ``rewind_epoch`` made from its level-``level`` ticket directly:
        the masks of level + 1 and every cell trained under them."""
        return [RunLayout.masks(level + 1, rewind_epoch),
                (GRID_DIR, f"L{level + 1}", f"k{rewind_epoch}"),
                (STABILITY_DIR, f"L{level + 1}", f"k{rewind_epoch}")]

    @staticmethod
    def histories() -> tuple[str, ...]:
        return (GRID_DIR, "histories.json")

    # directories made from the dense weights, and where they go when those are recomputed
    DERIVED_FROM_DENSE = (MASKS_DIR, GRID_DIR, STABILITY_DIR)

    @staticmethod
    def superseded(stamp: str) -> tuple[str, ...]:
        return ("superseded", stamp)
