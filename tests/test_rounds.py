"""Round planning (pure) and reading shares back from a real Petastorm split."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.train.rounds import (
    RowSlice,
    Share,
    epoch_rounds,
    list_row_groups,
    plan_epoch,
    read_share,
)

GROUPS = [RowSlice(f"f{i}.parquet", 0, 0, n) for i, n in enumerate([500, 300, 120, 80, 7])]


def _covered(shares: list[list[RowSlice]]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for share in shares:
        for s in share:
            rows.setdefault(s.file, []).extend(range(s.start, s.start + s.count))
    return rows


@pytest.mark.parametrize("workers,bound", [(1, 1000), (2, 100), (3, 64), (4, 1)])
def test_every_row_once_and_no_share_over_the_bound(workers, bound):
    shares = plan_epoch(GROUPS, workers, bound, seed=3)
    assert max(sum(s.count for s in share) for share in shares) <= bound
    covered = _covered(shares)
    for group in GROUPS:
        assert sorted(covered[group.file]) == list(range(group.count))


def test_rounds_are_balanced_and_seeded():
    shares = plan_epoch(GROUPS, 2, 100, seed=1)
    sizes = [sum(s.count for s in share) for share in shares]
    assert max(sizes) - min(sizes) <= max(sizes) // 2 + 1
    assert plan_epoch(GROUPS, 2, 100, seed=1) == shares
    assert plan_epoch(GROUPS, 2, 100, seed=2) != shares
    rounds = epoch_rounds("file:///x", GROUPS, 2, 100, seed=1)
    assert all(1 <= len(r) <= 2 for r in rounds)
    assert sum(len(r) for r in rounds) == len(shares)


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError):
        plan_epoch(GROUPS, 0, 10, seed=0)


def test_shares_read_back_exactly_the_split(sample_dataset):
    from pipeline.data.readers import load_numpy, split_url

    url = split_url(sample_dataset, "val")
    groups = list_row_groups(url)
    assert sum(g.count for g in groups) == 100
    x_all, y_all = [], []
    for share in plan_epoch(groups, 2, 30, seed=0):
        x, y = read_share(Share(url, tuple(share)))
        assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and len(x) == len(y) <= 30
        x_all.append(x)
        y_all.append(y)
    x_ref, y_ref = load_numpy(url)
    x_got, y_got = np.concatenate(x_all), np.concatenate(y_all)
    got = sorted(zip(y_got.tolist(), [a.tobytes() for a in x_got], strict=True))
    want = sorted(zip(y_ref.tolist(), [a.tobytes() for a in x_ref], strict=True))
    assert got == want
    small, _ = read_share(Share(url, tuple(groups[:1])), image_size=16)
    assert small.shape[1:] == (16, 16, 3)
