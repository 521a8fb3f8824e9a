"""Verdicts that need evidence: enough replicates, spread or an exact test, non-inferiority,
and Holm's adjustment across a report's comparisons."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from pipeline.report.verdicts import (
    BEAT,
    FELL_BELOW,
    FEW_REPLICATES,
    INCONCLUSIVE,
    MATCHED,
    NO_RESULT,
    NO_SPREAD,
    NON_INFERIOR,
    Evidence,
    adjusted_verdicts,
    count,
    evidence,
    holm,
    judge,
    non_inferior,
    sign_flip_p,
    verdict_of,
)


def test_two_replicates_decide_nothing() -> None:
    assert judge([5.0, 5.1]) == FEW_REPLICATES  # a t-interval exists, but n = 2
    assert judge([5.0, 5.0]) == FEW_REPLICATES  # the old rule's zero-width "beat"
    assert judge([3.0]) == FEW_REPLICATES and judge([]) == NO_RESULT


def test_identical_differences_go_to_the_exact_test() -> None:
    # n = 5 identical positive differences: the sign-flip p is 2 / 2**5 = 0.0625
    e = evidence([0.25] * 5)
    assert e.exact and e.low == e.high == pytest.approx(0.25)
    assert e.p_difference == pytest.approx(2 / 32)
    assert e.p_above_minus_margin == pytest.approx(1 / 32)  # not below 0.025 either
    assert verdict_of(e) == NO_SPREAD
    # n = 6: p = 2 / 64 < 0.05, so the exact test decides
    assert judge([0.25] * 6) == BEAT and judge([-0.25] * 6) == FELL_BELOW
    # all ties at 0: no difference to find; within the margin only from n = 6 (1/64 < 0.025)
    assert judge([0.0] * 5) == NO_SPREAD and judge([0.0] * 6) == MATCHED


def test_sign_flip_p_enumerates_every_sign_assignment() -> None:
    values = [1.0, 2.0, -0.5, 3.0]
    means = [np.mean(np.multiply(s, values)) for s in itertools.product((1, -1), repeat=4)]
    observed = np.mean(values)
    assert sign_flip_p(values) == pytest.approx(np.mean(np.abs(means) >= observed - 1e-12))
    assert sign_flip_p(values, "greater") == pytest.approx(
        np.mean(np.array(means) >= observed - 1e-12))
    assert sign_flip_p([1.0] * 4, "greater") == pytest.approx(1 / 16)


def test_a_ticket_within_the_margin_below_is_non_inferior() -> None:
    # +0.35 [-0.30, +1.00]: not inside ±1 (its top touches +1), but its low end is above -1
    e = Evidence(5, 0.35, -0.30, 1.00, p_difference=0.21, p_above_minus_margin=0.002,
                 p_below_margin=0.025, exact=False)
    assert verdict_of(e) == NON_INFERIOR and non_inferior(e)
    # the same from differences: the t-test's p-values agree with the interval's ends
    diffs = [0.35 + d for d in (-0.4, 0.4, -0.2, 0.2, 0.0)]
    e = evidence(diffs)
    assert e.low == pytest.approx(0.35 - stats.t.ppf(0.975, 4) * np.std(diffs, ddof=1) / 5**0.5)
    assert e.low > -1 and e.high < 1 and judge(diffs) == MATCHED
    wide = [0.35 + d for d in (-0.9, 0.9, -0.5, 0.5, 0.0)]
    we = evidence(wide)
    assert -1 < we.low < 0 < 1 < we.high and judge(wide) == NON_INFERIOR
    assert judge([0.35 + d for d in (-3, 3, -2, 2, 0)]) == INCONCLUSIVE


def test_holm_on_a_known_family() -> None:
    # m = 4: sorted 0.01, 0.02, 0.03, 0.04 -> 0.04, 0.06, 0.06 (monotone), 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1, then monotone
    # and as statsmodels computes it, on a seeded family of 80 (a report's size)
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(3).uniform(0, 0.2, 80) ** 2
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist())


def test_adjusted_verdicts_keep_only_what_survives_holm() -> None:
    strong = evidence([3.0, 3.2, 2.9, 3.1, 3.05])  # p far below 0.05 / 3
    weak = evidence([1.0, 0.1, 1.5, 0.4, 0.9])  # p between 0.05 / 2 and 0.05
    assert 0.05 / 2 < weak.p_difference < 0.05
    two = evidence([4.0, 4.5])
    family = [strong, weak, evidence([0.1, -0.3, 0.2, -0.1, 0.0]), two]
    raw = [verdict_of(e) for e in family]
    adjusted = adjusted_verdicts(family)
    assert raw[:2] == [BEAT, BEAT] and adjusted[0] == BEAT
    assert adjusted[1] in (NON_INFERIOR, MATCHED, INCONCLUSIVE) and adjusted[1] != BEAT
    assert adjusted[3] == raw[3] == FEW_REPLICATES  # not in the family: no evidence to adjust
    assert count(adjusted)[BEAT] == 1 and count(raw)[BEAT] == 2
