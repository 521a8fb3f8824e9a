"""Instability from an error path, its summary over replicates, and the rewind point."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.report.instability import (
    instability,
    path_instabilities,
    recommended_rewind_epoch,
    summarize,
)


def test_instability_is_the_peak_above_the_mean_of_the_ends():
    assert instability([0.10, 0.30, 0.20]) == pytest.approx(0.30 - 0.15)
    assert instability([0.10, 0.10, 0.10]) == 0.0
    assert instability([0.2, 0.1, 0.0]) == pytest.approx(0.1)  # a monotone path: the end
    assert math.isnan(instability([0.1]))
    assert math.isnan(instability([0.1, float("nan"), 0.2]))


def _path(replicate: int, k: int, peak: float, subject: str = "dense") -> list[dict]:
    tops = [0.9, 0.9 - peak, 0.9]
    return [{"replicate": replicate, "subject": subject, "level": 0, "k": k,
             "alpha": alpha, "split": "val", "top1": top1}
            for alpha, top1 in zip((1.0, 0.5, 0.0), tops, strict=True)]  # any row order


def test_the_earliest_k_whose_interval_lies_below_the_threshold_is_recommended():
    rows = []
    for replicate in range(3):
        rows += _path(replicate, 0, (0.30, 0.25, 0.35)[replicate])  # unstable
        rows += _path(replicate, 1, (0.010, 0.012, 0.008)[replicate])  # stable
        rows += _path(replicate, 2, (0.004, 0.006, 0.005)[replicate])
    per_replicate = path_instabilities(pd.DataFrame(rows))
    assert len(per_replicate) == 9
    k0 = per_replicate[per_replicate["k"] == 0]["instability"].tolist()
    assert k0 == pytest.approx([0.30, 0.25, 0.35])
    summary = summarize(per_replicate)
    assert [s.k for s in summary] == [0, 1, 2]
    assert [s.stable for s in summary] == [False, True, True]
    assert summary[1].mean == pytest.approx(0.010) and summary[1].high < 0.02
    assert recommended_rewind_epoch(summary) == 1
    assert recommended_rewind_epoch(summary, subject="ticket") is None


def test_a_mean_below_the_threshold_is_not_enough():
    """One replicate bounds nothing; a wide interval reaching past 2% is not stable."""
    one = summarize(path_instabilities(pd.DataFrame(_path(0, 0, 0.001))))
    assert one[0].n == 1 and not one[0].stable
    wide = summarize(path_instabilities(pd.DataFrame(
        _path(0, 0, 0.000) + _path(1, 0, 0.030) + _path(2, 0, 0.000))))
    assert wide[0].mean == pytest.approx(0.01) and wide[0].high > 0.02 and not wide[0].stable
    assert recommended_rewind_epoch(wide) is None
