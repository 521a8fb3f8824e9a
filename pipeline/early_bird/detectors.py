"""Where the ticket is found: detectors over the series of tracked masks.

``distance`` is You et al.'s rule: the ticket is found at the first tracked point whose
last ``window`` consecutive mask distances are all below ``epsilon``. ``stationarity``
asks more of a chosen series over its trailing ``window`` points: no monotonic trend
(Mann–Kendall, as Kendall's tau of the values against time, SciPy's ``kendalltau``: p ≥
α) and no unit root (augmented Dickey–Fuller, statsmodels' ``adfuller``: p < α). A series
that is constant over the window is stationary by definition (the mask stopped moving).
Both return the index of the point where they fire, or None.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_ADF_POINTS = 6  # below this adfuller cannot fit even one lag


@dataclass(frozen=True)
class Stationarity:
    trend_p: float  # Mann–Kendall p-value (small: a trend)
    unit_root_p: float  # ADF p-value (small: no unit root)

    def stationary(self, alpha: float) -> bool:
        return self.trend_p >= alpha and self.unit_root_p < alpha


def distance_rule(distances: Sequence[float | None], window: int, epsilon: float) -> int | None:
    """First index whose last ``window`` distances (to the previous mask) are < epsilon."""
    run = 0
    for i, d in enumerate(distances):
        run = run + 1 if d is not None and d < epsilon else 0
        if run >= window:
            return i
    return None


def stationarity_test(values: Sequence[float]) -> Stationarity:
    """Mann–Kendall and ADF p-values of ``values`` (at least MIN_ADF_POINTS of them)."""
    from scipy.stats import kendalltau
    from statsmodels.tsa.stattools import adfuller

    x = np.asarray(values, dtype=float)
    if len(x) < MIN_ADF_POINTS:
        raise ValueError(f"a stationarity test needs {MIN_ADF_POINTS} points, got {len(x)}")
    if np.ptp(x) == 0:
        return Stationarity(1.0, 0.0)
    trend = kendalltau(np.arange(len(x)), x).pvalue
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small samples: statsmodels warns about its tables
        unit_root = adfuller(x, maxlag=1, autolag=None, regression="c")[1]
    return Stationarity(float(trend), float(unit_root))


def stationarity_rule(values: Sequence[float | None], window: int, alpha: float) -> int | None:
    """First index whose trailing ``window`` values are stationary at level ``alpha``."""
    window = max(window, MIN_ADF_POINTS)
    for i in range(window - 1, len(values)):
        part = values[i - window + 1:i + 1]
        if any(v is None for v in part):
            continue
        if stationarity_test(part).stationary(alpha):
            return i
    return None
