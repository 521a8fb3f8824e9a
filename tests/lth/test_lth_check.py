"""The LTH checks of a run (pipeline/report/lth_check.py) on hand-made result tables."""

from __future__ import annotations

import numpy as np

from pipeline.report.lth_check import check_markdown, check_run
from pipeline.report.result_row import ResultRow
from pipeline.report.table import results_frame
from pipeline.tickets.controls import TICKET

WEIGHTS = {1: 0.5, 2: 0.25, 3: 0.10, 4: 0.05}


def _row(level: int, control: str, top1: float, replicate: int, best: int) -> ResultRow:
    keep = 1.0 if level == 0 else WEIGHTS[level]
    history = [{"epoch": e, "top1": top1, "top5": 1.0, "val_loss": abs(e - best) + 0.1,
                "loss": 0.1, "seconds": 1.0} for e in range(1, 6)]
    return ResultRow.ok(f"L{level}-k0-{control}", level, 0, control, replicate,
                        {"weights_remaining_prunable": keep, "weights_remaining_overall": keep,
                         "layers_emptied": 0, "depthwise_channels_emptied": 0},
                        history, 1.0, replicate=replicate,
                        control_seed=None if control == TICKET else replicate)


def _study(ticket: dict[int, float], reinit: dict[int, float], replicates: int = 4):
    rng = np.random.default_rng(0)
    rows = []
    for r in range(replicates):
        shift = 0.004 * rng.standard_normal()  # a replicate's own level, removed by pairing
        rows.append(_row(0, TICKET, 0.97 + shift, r, best=4))
        for level in WEIGHTS:
            noise = 0.001 * rng.standard_normal(2)
            rows.append(_row(level, TICKET, ticket[level] + shift + noise[0], r, best=2))
            rows.append(_row(level, "reinit", reinit[level] + shift + noise[1], r, best=5))
            rows.append(_row(level, "random_mask", reinit[level] + shift, r, best=5))
    return results_frame(rows)


def test_a_winning_pattern_meets_both_targets():
    df = _study(ticket={1: 0.975, 2: 0.965, 3: 0.95, 4: 0.93},
                reinit={1: 0.96, 2: 0.95, 3: 0.90, 4: 0.85})
    [check] = check_run(df)
    assert check.rewind_epoch == 0 and [ln.level for ln in check.levels] == [1, 2, 3, 4]
    assert check.matches_target
    assert check.match_down_to == 0.25  # level 3 is 2 points below the reference
    assert check.sparse_line.level == 4
    assert check.beats_target
    assert check.sparse_line.vs_reinit.interval.low > 7
    line = check.levels[0]
    assert line.best_epoch == {TICKET: 2.0, "reinit": 5.0, "random_mask": 5.0}
    assert check.reference_best_epoch == 4.0
    text = check_markdown([check])
    assert "**yes**" in text and "**beats**" in text and "50.0%" in text


def test_no_edge_over_reinit_and_a_lost_match_are_reported_as_such():
    df = _study(ticket={1: 0.95, 2: 0.95, 3: 0.90, 4: 0.85},
                reinit={1: 0.95, 2: 0.95, 3: 0.90, 4: 0.85})
    [check] = check_run(df)
    assert not check.matches_target  # level 1 is 2 points below
    assert check.match_down_to is None
    assert not check.beats_target
    text = check_markdown([check])
    assert "**no**" in text and "**does not beat**" in text and "down to none" in text


def test_a_run_without_a_sparse_enough_level_is_not_checked_there():
    df = _study(ticket={1: 0.975, 2: 0.965, 3: 0.95, 4: 0.93},
                reinit={1: 0.96, 2: 0.95, 3: 0.90, 4: 0.85})
    df = df[df["level"].astype(float) < 4]
    [check] = check_run(df)
    assert check.sparse_line is None and not check.beats_target
    assert "(none in this run): not checked" in check_markdown([check])
