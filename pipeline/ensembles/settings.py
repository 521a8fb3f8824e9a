"""Settings of ``jobs/ensemble_tickets.py`` (``--set ensemble.key=value``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config import check_choices, require, section, setting

GROUPINGS = ("replicates", "rewinds")
MERGES = ("union", "intersection")


@dataclass
class EnsembleSettings:
    across: list[str] = setting(
        ["replicates", "rewinds"], "prediction ensembles of the tickets of each level: "
        "across the replicates (one per rewind point) and across the rewind points (one "
        "per replicate)"
    )
    members: list[str] = setting(
        [], "one more prediction ensemble of the listed cells, each CELL@REPLICATE "
        "(L2-k1-none@0)"
    )
    levels: list[int] = setting([], "pruning levels whose tickets are ensembled ([] = all)")
    merge: list[str] = setting(["union", "intersection"], "merged tickets to train")
    merge_pairs: list[str] = setting(
        [], "tickets to merge, each A+B with A and B as CELL@REPLICATE ([] = the sparsest "
        "tickets of replicate 0 at the first and last rewind points, or of replicates 0 "
        "and 1 when the run has one rewind point)"
    )
    merge_weights: Literal["first", "second"] = setting(
        "first", "the rewind weights (and replicate: seed, data order) a merged ticket "
        "trains from: the first or the second member's"
    )
    output: str = setting("", "where the results go (default: <run directory>/ensembles)")

    def __post_init__(self) -> None:
        check_choices(self)
        require(set(self.across) <= set(GROUPINGS), "across",
                f"choose from {', '.join(GROUPINGS)}; got {self.across}")
        require(set(self.merge) <= set(MERGES), "merge",
                f"choose from {', '.join(MERGES)}; got {self.merge}")
        require(all(level >= 1 for level in self.levels), "levels",
                f"pruning levels start at 1, got {self.levels}")
        require(all(p.count("+") == 1 for p in self.merge_pairs), "merge_pairs",
                f"each pair is A+B; got {self.merge_pairs}")


@dataclass
class EnsembleJobSettings:
    ensemble: EnsembleSettings = section(EnsembleSettings)
