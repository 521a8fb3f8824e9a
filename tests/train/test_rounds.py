"""Round planning (pure) and reading shares back from a real Petastorm split."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.dataset import DatasetSplit
from pipeline.train.rounds import RowSlice, epoch_rounds, plan_epoch

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
    split = DatasetSplit.of(url)
    groups = split.row_groups()
    assert sum(g.count for g in groups) == 100
    x_all, y_all = [], []
    for share in plan_epoch(groups, 2, 30, seed=0):
        x, y = split.read(share)
        assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and len(x) == len(y) <= 30
        x_all.append(x)
        y_all.append(y)
    x_ref, y_ref = load_numpy(url)
    x_got, y_got = np.concatenate(x_all), np.concatenate(y_all)
    got = sorted(zip(y_got.tolist(), [a.tobytes() for a in x_got], strict=True))
    want = sorted(zip(y_ref.tolist(), [a.tobytes() for a in x_ref], strict=True))
    assert got == want
    small, _ = split.read(groups[:1], image_size=16)
    assert small.shape[1:] == (16, 16, 3)


def test_share_records_flip_half_the_images_the_same_way_every_time(sample_dataset):
    from pipeline.data.readers import split_url
    from pipeline.train.data_parallel import share_records
    from pipeline.train.rounds import Share

    url = split_url(sample_dataset, "val")
    shares = [Share(url, tuple(s)) for s in plan_epoch(DatasetSplit.of(url).row_groups(), 2, 50,
                                                       seed=0)]

    def records(flip_seed):
        return list(share_records(iter(shares), 10, None, flip_seed))

    plain, flipped = records(None), records(11)
    assert len(plain) == len(flipped) == 100
    assert all(r[1].shape == (10,) and r[1].sum() == 1 for r in plain)  # one-hot labels
    mirrored = [not np.array_equal(a[0], b[0]) for a, b in zip(plain, flipped, strict=True)]
    assert all(np.array_equal(b[0], a[0][:, ::-1]) for a, b, m
               in zip(plain, flipped, mirrored, strict=True) if m)
    assert 30 < sum(mirrored) < 70
    again = records(11)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(flipped, again, strict=True))
