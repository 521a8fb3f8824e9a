"""Grid cells: one trained model each (a ticket or a control run), named and seeded stably."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.experiment.settings import PruneJobSettings
from pipeline.seeding import derive_seed
from pipeline.tickets.controls import TICKET


@dataclass(frozen=True)
class Cell:
    """Level ``level`` of the IMP chain rewound to epoch ``rewind_epoch``, trained as
    ``control`` (``none`` = the ticket itself)."""

    level: int
    rewind_epoch: int
    control: str = TICKET

    @property
    def name(self) -> str:
        return f"L{self.level}-k{self.rewind_epoch}-{self.control}"

    def seed(self, run_seed: int) -> int:
        """Seed of the cell's data order and, for controls, of its random draw.

        Tickets use the run seed; each control gets its own seed, different per level and
        rewind epoch, so no two control runs share a draw.
        """
        if self.control == TICKET:
            return run_seed
        return derive_seed(run_seed, "control", self.control, self.level, self.rewind_epoch)


def grid_cells(settings: PruneJobSettings) -> list[Cell]:
    """Every cell of the grid in training order: by level, rewind epoch, ticket first."""
    cells = []
    for level in range(1, settings.prune.levels + 1):
        for k in settings.rewind.epochs:
            cells.append(Cell(level, k))
            cells.extend(Cell(level, k, control) for control in settings.grid.controls)
    return cells


def waves(settings: PruneJobSettings, cells: list[Cell]) -> list[list[Cell]]:
    """Groups of cells that can train in parallel.

    Iterative pruning needs level ``L - 1``'s trained ticket before it can make level
    ``L``'s masks, so each level is one wave; one-shot masks all come from the dense model,
    so the whole grid is one wave.
    """
    if settings.prune.method == "oneshot":
        return [cells]
    levels = sorted({c.level for c in cells})
    return [[c for c in cells if c.level == level] for level in levels]
