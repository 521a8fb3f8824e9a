"""Grid cells: one trained model each (a ticket, a control run or a level-0 reference),
named and seeded stably."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.experiment.settings import PruneJobSettings
from pipeline.seeding import derive_seed
from pipeline.tickets.controls import TICKET


@dataclass(frozen=True)
class Cell:
    """Level ``level`` of the IMP chain rewound to epoch ``rewind_epoch``, trained as
    ``control`` (``none`` = the ticket itself). Level 0 is the unpruned network rewound to
    ``rewind_epoch`` and trained like the tickets: their like-for-like dense reference."""

    level: int
    rewind_epoch: int
    control: str = TICKET
    # instability analysis: copy 0 or 1 of the network (or ticket) from this rewind point,
    # trained on the copy's own data order (pipeline.experiment.stability_stage)
    copy: int | None = None

    @property
    def name(self) -> str:
        if self.copy is not None:
            return f"L{self.level}-k{self.rewind_epoch}-copy{self.copy}"
        return f"L{self.level}-k{self.rewind_epoch}-{self.control}"

    def seed(self, run_seed: int) -> int:
        """Seed of a control's random draw (its weights or its mask), different per level
        and rewind epoch, so no two control runs share a draw; the run seed for tickets,
        which draw nothing. The data order is never a cell's own: every cell of a replicate
        trains on one order (:attr:`CellContext.data_order_seed`)."""
        if self.control == TICKET:
            return run_seed
        return derive_seed(run_seed, "control", self.control, self.level, self.rewind_epoch)

    @property
    def is_reference(self) -> bool:
        """The level-0 cell: no mask, no control."""
        return self.level == 0


def grid_cells(settings: PruneJobSettings) -> list[Cell]:
    """Every cell of the grid in training order: the level-0 references, then by level,
    rewind epoch, ticket first."""
    cells = [Cell(0, k) for k in settings.rewind.epochs]
    for level in range(1, settings.prune.levels + 1):
        for k in settings.rewind.epochs:
            cells.append(Cell(level, k))
            cells.extend(Cell(level, k, control) for control in settings.grid.controls)
    return cells


def waves(settings: PruneJobSettings, cells: list[Cell]) -> list[list[Cell]]:
    """Groups of cells that can train in parallel.

    Iterative pruning needs level ``L - 1``'s trained ticket before it can make level
    ``L``'s masks, so each level is one wave (the level-0 references join the first);
    one-shot masks all come from the dense model, so the whole grid is one wave.
    """
    if settings.prune.method == "oneshot":
        return [cells]
    levels = sorted({max(c.level, 1) for c in cells})
    return [[c for c in cells if max(c.level, 1) == level] for level in levels]
