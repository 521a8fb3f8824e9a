"""Bounded training rounds over a Petastorm split: planned on the driver, read on executors.

Elephas turns a whole partition into one numpy array, so executor memory grows with the
partition. Here an epoch is cut into *rounds*: the driver lists the split's Parquet row
groups (footers only), shuffles them per epoch and cuts the stream into per-task shares of
whole batches, at most ``images_per_task`` images (:func:`plan_whole_batches`); each round
gives one share to every worker. :func:`plan_epoch` cuts a whole split into about equal
shares (evaluation). A task reads only its own row-group slices straight from the store
(:meth:`pipeline.data.dataset.DatasetSplit.read`), so neither the driver nor any executor
ever holds more than one round's share: ``images_per_task × N × N × 3`` bytes of uint8
pixels (2,048 images at 224×224 is about 300 MB). This module only plans.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.data.dataset import RowSlice

__all__ = ["RowSlice", "Share", "plan_epoch", "plan_whole_batches"]


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


def plan_whole_batches(
    groups: list[RowSlice], workers: int, steps_per_epoch: int, batch_size: int,
    steps_per_round: int, seed: int,
) -> list[list[list[RowSlice]]]:
    """One epoch of local SGD: rounds, each with one share per worker, of whole batches.

    Row groups are shuffled with ``seed`` and read as one stream. Every round gives each of
    the ``workers`` the next ``m × batch_size`` images, ``m = min(steps_per_round, steps
    left)``, until every worker has taken ``steps_per_epoch`` steps; the stream's remaining
    images (fewer than one global batch per epoch when the epoch uses all the data it can)
    are skipped this epoch.
    """
    if min(workers, steps_per_epoch, batch_size, steps_per_round) < 1:
        raise ValueError("workers, steps_per_epoch, batch_size and steps_per_round must be "
                         "at least 1")
    order = list(groups)
    random.Random(seed).shuffle(order)
    total = sum(g.count for g in order)
    needed = steps_per_epoch * workers * batch_size
    if needed > total:
        raise ValueError(f"an epoch of {steps_per_epoch} steps x {workers} workers x batch "
                         f"{batch_size} needs {needed} images; the split has {total}")
    rounds: list[list[list[RowSlice]]] = []
    group, used = 0, 0  # position in the stream: order[group], rows taken from it
    steps_left = steps_per_epoch
    while steps_left:
        steps = min(steps_per_round, steps_left)
        shares = []
        for _ in range(workers):
            want, share = steps * batch_size, []
            while want:
                current = order[group]
                take = min(want, current.count - used)
                if take:
                    share.append(RowSlice(current.file, current.row_group,
                                          current.start + used, take))
                used, want = used + take, want - take
                if used == current.count:
                    group, used = group + 1, 0
            shares.append(share)
        rounds.append(shares)
        steps_left -= steps
    return rounds
