"""Bounded training rounds over a Petastorm split: planned on the driver, read on executors.

Elephas turns a whole partition into one numpy array, so executor memory grows with the
partition. Here an epoch is cut into *rounds*: the driver lists the split's Parquet row
groups (footers only), shuffles them per epoch, cuts them into chunks and packs the chunks
into per-task shares of at most ``images_per_task`` images; each round gives one share to
every worker. A task reads only its own row-group slices straight from the store
(:meth:`pipeline.data.dataset.DatasetSplit.read`), so neither the driver nor any executor
ever holds more than one round's share: ``images_per_task × N × N × 3`` bytes of uint8
pixels (2,048 images at 224×224 is about 300 MB). This module only plans.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.data.dataset import RowSlice

__all__ = ["RowSlice", "Share", "epoch_rounds", "plan_epoch"]


@dataclass(frozen=True)
class Share:
    """What one task trains on in one round."""

    split_url: str
    slices: tuple[RowSlice, ...]

    @property
    def images(self) -> int:
        return sum(s.count for s in self.slices)


def plan_epoch(
    groups: list[RowSlice], workers: int, images_per_task: int, seed: int
) -> list[list[RowSlice]]:
    """Per-task shares of one epoch, in round order: ``shares[r * workers + w]``.

    Row groups are shuffled with ``seed``, cut into chunks of at most ``images_per_task``
    rows, and dealt out so every task of a round gets about the same number of images.
    """
    if workers < 1 or images_per_task < 1:
        raise ValueError("workers and images_per_task must be at least 1")
    order = list(groups)
    random.Random(seed).shuffle(order)
    total = sum(g.count for g in order)
    if total == 0:
        return []
    rounds = -(-total // (workers * images_per_task))
    tasks = rounds * workers
    per_task = -(-total // tasks)
    shares: list[list[RowSlice]] = [[] for _ in range(tasks)]
    task, filled = 0, 0
    for group in order:
        start = group.start
        left = group.count
        while left:
            take = min(left, per_task - filled)
            shares[task].append(RowSlice(group.file, group.row_group, start, take))
            start += take
            left -= take
            filled += take
            if filled == per_task and task < tasks - 1:
                task, filled = task + 1, 0
    return [s for s in shares if s]


def epoch_rounds(
    split_url: str, groups: list[RowSlice], workers: int, images_per_task: int, seed: int
) -> list[list[Share]]:
    """The epoch's rounds: each a list of at most ``workers`` shares."""
    shares = [Share(split_url, tuple(s)) for s in plan_epoch(groups, workers, images_per_task,
                                                             seed)]
    return [shares[i : i + workers] for i in range(0, len(shares), workers)]


# Reading belongs to pipeline.data.dataset; these two names remain for callers not yet
# moved over (the dense and data-parallel stages, benchmarks, the convergence test).
