"""Round planning (pure) and reading shares back from a real Petastorm split."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.dataset import DatasetSplit
from pipeline.train.rounds import RowSlice, plan_epoch, plan_whole_batches

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


@pytest.mark.parametrize("workers,batch,steps_per_round", [(1, 32, 3), (2, 25, 4), (3, 7, 1)])
def test_training_rounds_hold_whole_batches(workers, batch, steps_per_round):
    total = sum(g.count for g in GROUPS)  # 1,007 rows
    steps = total // (workers * batch)
    rounds = plan_whole_batches(GROUPS, workers, steps, batch, steps_per_round, seed=5)
    assert all(len(r) == workers for r in rounds)
    taken = 0
    for shares in rounds:
        sizes = {sum(s.count for s in share) for share in shares}
        assert len(sizes) == 1  # every replica of a round takes the same steps
        size = sizes.pop()
        assert size % batch == 0 and size <= steps_per_round * batch
        taken += size // batch
    assert taken == steps  # every replica takes steps_per_epoch steps, no partial batch
    covered = _covered([share for shares in rounds for share in shares])
    rows = [(f, r) for f, rs in covered.items() for r in rs]
    assert len(rows) == len(set(rows)) == steps * workers * batch  # no row twice
    assert total - len(rows) < workers * batch  # only the last partial global batch is left
    assert plan_whole_batches(GROUPS, workers, steps, batch, steps_per_round, seed=5) == rounds
    assert plan_whole_batches(GROUPS, workers, steps, batch, steps_per_round, seed=6) != rounds


def test_training_rounds_refuse_more_steps_than_the_data_holds():
    with pytest.raises(ValueError, match="needs 1024 images; the split has 1007"):
        plan_whole_batches(GROUPS, 2, 16, 32, 4, seed=0)


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
