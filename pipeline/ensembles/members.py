"""The members of ensembles and merges: finished cells of a run, named CELL@REPLICATE."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import ConfigError
from pipeline.experiment.cells import Cell, grid_cells
from pipeline.experiment.settings import PruneJobSettings
from pipeline.tickets.controls import TICKET


@dataclass(frozen=True)
class Member:
    replicate: int
    cell: Cell

    @property
    def name(self) -> str:
        return f"{self.cell.name}@{self.replicate}"


def parse_member(text: str, settings: PruneJobSettings) -> Member:
    """``"L2-k1-none@0"`` → the cell of the run's grid in replicate 0 (ConfigError if the
    run has no such cell or replicate)."""
    name, _, replicate = text.strip().partition("@")
    cells = {c.name: c for c in grid_cells(settings)}
    if name not in cells:
        raise ConfigError(f"ensemble: unknown cell {name!r} in {text!r} (cells look like "
                          f"L2-k1-{TICKET}: level, rewind epoch, control)")
    if not replicate.isdigit() or int(replicate) >= settings.run.replicates:
        raise ConfigError(f"ensemble: {text!r} needs @REPLICATE, 0..{settings.run.replicates - 1}")
    return Member(int(replicate), cells[name])


@dataclass(frozen=True)
class Group:
    """One prediction ensemble: its name, how it was formed and its members."""

    name: str
    grouping: str  # replicates, rewinds or listed
    members: tuple[Member, ...]


def ticket_groups(settings: PruneJobSettings, levels: list[int], across: list[str]
                  ) -> list[Group]:
    """Ensembles of the tickets at ``levels``: across replicates (per rewind point) and
    across rewind points (per replicate); groupings with fewer than two members are left
    out."""
    replicates = range(settings.run.replicates)
    rewinds = settings.rewind.epochs
    groups = []
    for level in levels:
        if "replicates" in across and len(replicates) > 1:
            for k in rewinds:
                members = tuple(Member(r, Cell(level, k)) for r in replicates)
                groups.append(Group(f"L{level}-k{k} across replicates", "replicates", members))
        if "rewinds" in across and len(rewinds) > 1:
            for r in replicates:
                members = tuple(Member(r, Cell(level, k)) for k in rewinds)
                groups.append(Group(f"L{level} replicate {r} across rewinds", "rewinds",
                                    members))
    return groups


def default_merge_pair(settings: PruneJobSettings) -> tuple[Member, Member] | None:
    """The sparsest tickets of replicate 0 at the first and the last rewind point (two IMP
    chains from one dense network), else of replicates 0 and 1 (two networks); None when
    the run has neither."""
    level, rewinds = settings.prune.levels, settings.rewind.epochs
    if len(rewinds) > 1:
        return Member(0, Cell(level, rewinds[0])), Member(0, Cell(level, rewinds[-1]))
    if settings.run.replicates > 1:
        return Member(0, Cell(level, rewinds[-1])), Member(1, Cell(level, rewinds[-1]))
    return None
