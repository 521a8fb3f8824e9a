"""Verdicts on paired differences (ticket − other, in points), and what they need.

A verdict is a claim that the evidence supports, or "inconclusive". Every verdict rests on
at least :data:`MIN_REPLICATES` paired replicates. With spread, the test is the paired
t-test whose 95% interval the report prints, so "beat" means the interval lies above 0.
When every difference is the same (accuracies move in steps of one image, so ties
happen), a zero-width interval decides nothing by itself: the exact paired sign-flip test
decides, or the verdict is "inconclusive (no spread)".

The claims, in the order they are given:

* **beat** / **fell below**: the difference is not 0 (two-sided, level 1 − confidence);
* **matched**: the difference lies within ±margin (two one-sided tests, each at half the
  level: the interval inside ±margin);
* **non-inferior**: the difference is above −margin (one-sided at half the level: the
  interval's low end above −margin). This is the lottery ticket hypothesis' "matching".

A report that makes many comparisons adjusts them with Holm's step-down method
(:func:`holm`), one family of comparisons and one kind of claim at a time
(:func:`adjusted_verdicts`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
# The equivalence margin in top-1 points: "matched" within ±MARGIN_POINTS, "non-inferior"
# above −MARGIN_POINTS.
MARGIN_POINTS = 1.0
MIN_REPLICATES = 3

BEAT = "beat"
FELL_BELOW = "fell below"
MATCHED = "matched"
NON_INFERIOR = "non-inferior"
INCONCLUSIVE = "inconclusive"
FEW_REPLICATES = f"inconclusive (fewer than {MIN_REPLICATES} replicates)"
NO_SPREAD = "inconclusive (no spread)"
NO_RESULT = "no result"
VERDICTS = (BEAT, NON_INFERIOR, MATCHED, FELL_BELOW, INCONCLUSIVE, FEW_REPLICATES, NO_SPREAD)
UNDECIDED = (INCONCLUSIVE, FEW_REPLICATES, NO_SPREAD)

_EXACT_MAX_N = 16  # 2**16 sign assignments at most


@dataclass(frozen=True)
class Evidence:
    """What ``n`` paired differences say: their mean, the t-interval (zero width without
    spread) and the p-values of the three claims. ``exact``: the sign-flip test gave them."""

    n: int
    mean: float
    low: float
    high: float
    p_difference: float  # two-sided, against "the difference is 0"
    p_above_minus_margin: float  # one-sided, against "the difference is at most −margin"
    p_below_margin: float  # one-sided, against "the difference is at least +margin"
    exact: bool
    confidence: float = CONFIDENCE


def sign_flip_p(values: Sequence[float], alternative: str = "two-sided") -> float:
    """The exact paired sign-flip p-value of ``values`` (differences) against a mean of 0:
    the share of the 2**n sign assignments whose mean is at least as extreme."""
    x = np.asarray(values, dtype="float64")
    n = x.size
    if n == 0 or n > _EXACT_MAX_N:
        raise ValueError(f"the exact sign-flip test takes 1 to {_EXACT_MAX_N} values, got {n}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    means = signs @ x / n
    observed = float(x.mean())
    tol = 1e-12 * max(1.0, float(np.abs(x).max()))
    if alternative == "greater":
        hits = means >= observed - tol
    elif alternative == "less":
        hits = means <= observed + tol
    else:
        hits = np.abs(means) >= abs(observed) - tol
    return float(hits.mean())


def evidence(differences: Sequence[float], margin: float = MARGIN_POINTS,
             confidence: float = CONFIDENCE) -> Evidence:
    """The evidence of ``differences`` (NaNs dropped)."""
    x = np.asarray(differences, dtype="float64")
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Evidence(0, math.nan, math.nan, math.nan, 1.0, 1.0, 1.0, False, confidence)
    mean = float(x.mean())
    if n < 2:
        return Evidence(n, mean, math.nan, math.nan, 1.0, 1.0, 1.0, False, confidence)
    sd = float(x.std(ddof=1))
    if sd <= 1e-9 * max(1.0, abs(mean)):
        if n > _EXACT_MAX_N:  # the sign-flip test's closed form for identical values
            two, one = 2.0 ** (1 - n), 2.0 ** -n
            return Evidence(n, mean, mean, mean, two if mean != 0 else 1.0,
                            one if mean > -margin else 1.0, one if mean < margin else 1.0,
                            True, confidence)
        return Evidence(
            n, mean, mean, mean,
            p_difference=sign_flip_p(x) if mean != 0 else 1.0,
            p_above_minus_margin=sign_flip_p(x + margin, "greater") if mean > -margin
            else 1.0,
            p_below_margin=sign_flip_p(x - margin, "less") if mean < margin else 1.0,
            exact=True, confidence=confidence)
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return Evidence(
        n, mean, mean - half, mean + half,
        p_difference=float(2 * stats.t.sf(abs(mean) / se, n - 1)),
        p_above_minus_margin=float(stats.t.sf((mean + margin) / se, n - 1)),
        p_below_margin=float(stats.t.cdf((mean - margin) / se, n - 1)),
        exact=False, confidence=confidence)


def _alpha(e: Evidence) -> float:
    return round(1.0 - e.confidence, 12)  # 1 - 0.95 is 0.05000000000000004 in floats


def verdict_of(e: Evidence) -> str:
    """The strongest claim ``e`` supports, or why there is none."""
    if e.n == 0:
        return NO_RESULT
    if e.n < MIN_REPLICATES:
        return FEW_REPLICATES
    alpha = _alpha(e)
    if e.p_difference < alpha:
        return BEAT if e.mean > 0 else FELL_BELOW
    if max(e.p_above_minus_margin, e.p_below_margin) < alpha / 2:
        return MATCHED
    if e.p_above_minus_margin < alpha / 2:
        return NON_INFERIOR
    return NO_SPREAD if e.exact else INCONCLUSIVE


def judge(differences: Sequence[float], margin: float = MARGIN_POINTS,
          confidence: float = CONFIDENCE) -> str:
    """The verdict on ``differences``."""
    return verdict_of(evidence(differences, margin, confidence))


def non_inferior(e: Evidence) -> bool:
    """The lottery ticket hypothesis' "matching": at least MIN_REPLICATES pairs and the
    difference shown above −margin (the interval's low end, or the exact test)."""
    return e.n >= MIN_REPLICATES and e.p_above_minus_margin < _alpha(e) / 2


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    p = np.asarray(p_values, dtype="float64")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def adjusted_verdicts(family: Sequence[Evidence]) -> list[str]:
    """The verdicts of a family of comparisons with every kind of claim Holm-adjusted
    across the family (the comparisons with at least MIN_REPLICATES pairs)."""
    counted = [i for i, e in enumerate(family) if e.n >= MIN_REPLICATES]
    out = [verdict_of(e) for e in family]
    if not counted:
        return out
    columns = {name: holm([getattr(family[i], name) for i in counted])
               for name in ("p_difference", "p_above_minus_margin", "p_below_margin")}
    for j, i in enumerate(counted):
        out[i] = verdict_of(replace(family[i], **{k: v[j] for k, v in columns.items()}))
    return out


def count(verdicts: Sequence[str]) -> dict[str, int]:
    """How many of each verdict (inconclusive ones together), in VERDICTS order."""
    counts = {BEAT: 0, NON_INFERIOR: 0, MATCHED: 0, FELL_BELOW: 0, INCONCLUSIVE: 0}
    for v in verdicts:
        if v in UNDECIDED:
            counts[INCONCLUSIVE] += 1
        elif v in counts:
            counts[v] += 1
    return counts
