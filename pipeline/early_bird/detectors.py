"""Where the ticket is found: detectors over the series of tracked masks.

``distance`` is You et al.'s rule: the ticket is found at the first tracked point whose
last ``window`` consecutive mask distances are all below ``epsilon`` times the largest
distance two masks at the tracked pruning fraction can have (:func:`max_distance`).

``stationarity`` asks more of a chosen series over its trailing ``window`` points: no
monotonic trend (Mann–Kendall, exact null distribution of S: p ≥ α) and no unit root, by
the von Neumann ratio of the window (the sum of squared successive differences over the
sum of squared deviations from the mean; as a unit-root test, Sargan and Bhargava's): about
2 for a series that wanders around a level, near 0 for a random walk or a trend. Its
p-value and the level it is compared with are finite-sample and simulated:

- ``unit_root_p`` is the fraction of windows of seeded Gaussian random walks (the unit-root
  null; the ratio depends on neither the walk's start nor its scale) whose ratio is at
  least the window's;
- the rule tests every trailing window as points arrive, and a per-window level α would
  fire on most random walks of 30 points. The window ending at the n-th point is held to
  ``beta * g(n)``, ``g(n) = 1`` up to :data:`FLAT_POINTS` points and
  ``(FLAT_POINTS / n) ** 3`` after; ``beta`` is the largest level at which the whole scan
  fires on at most α of :data:`CALIBRATION_WALKS` simulated walks of
  :data:`CALIBRATION_POINTS` points, with the windows beyond them counted by a union bound
  and the simulation's own sampling error (one-sided 95%) taken off α. The false-alarm
  rate is then at most α at any series length, a detection never moves as the series
  grows, and the Mann–Kendall condition (left out of the calibration) only removes
  detections.

The simulation is seeded and runs once per window length and process (about two seconds).
A series that is constant over the window is stationary by definition (the mask stopped
moving). Both rules return the index of the point where they fire, or None.

The augmented Dickey–Fuller test this detector used before cannot be calibrated into a
useful rule at these lengths: at the per-window level of a calibrated scan a window of
white noise passes ADF (with its simulated finite-sample null) 0.3% of the time with 8
points and 1.0% with 12, the von Neumann ratio 3.5% and 17% (docs/early-bird.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

MIN_POINTS = 6  # the smallest trailing window the stationarity detector tests
FLAT_POINTS = 32  # windows ending within the first 32 points share the level beta
SPENDING_POWER = 3  # past FLAT_POINTS the share falls as (FLAT_POINTS / n) ** 3
CALIBRATION_POINTS = 256  # the length of the simulated random walks (longer windows: 4×W)
CALIBRATION_WALKS = 8000
CALIBRATION_SEED = 20190926  # fixed: the detector's levels are the same in every run
MONTE_CARLO_Z = 1.645  # the calibrated rate is held below alpha by this many standard errors


def max_distance(pruned: float, pruned_other: float | None = None) -> float:
    """The largest normalised Hamming distance between two masks of the same weights that
    prune the fractions ``pruned`` and ``pruned_other`` (default the same) of them:
    ``min(p + q, 2 - p - q)``, so ``2·min(p, 1 - p)`` for two masks at one fraction (0.4
    at 20% pruning, 1 at 50%). Two independent random masks at p differ by about
    ``2·p·(1 - p)`` (0.32 at 20%): ``1 - min(p, 1 - p)`` of the largest."""
    q = pruned if pruned_other is None else pruned_other
    for f in (pruned, q):
        if not 0 <= f <= 1:
            raise ValueError(f"a pruned fraction is in [0, 1], got {f}")
    return float(min(pruned + q, 2 - pruned - q))


def distance_threshold(epsilon: float, pruned: float | None) -> float:
    """The distance rule's threshold: ``epsilon`` of :func:`max_distance` at the fraction
    ``pruned``; without one (None) ``epsilon`` is taken as a distance itself."""
    return epsilon if pruned is None else epsilon * max_distance(pruned)


def distance_rule(distances: Sequence[float | None], window: int, epsilon: float,
                  pruned: float | None = None) -> int | None:
    """First index whose last ``window`` distances (to the previous mask) are below
    :func:`distance_threshold` (``epsilon`` of the largest distance at ``pruned``)."""
    threshold = distance_threshold(epsilon, pruned)
    run = 0
    for i, d in enumerate(distances):
        run = run + 1 if d is not None and d < threshold else 0
        if run >= window:
            return i
    return None


@dataclass(frozen=True)
class Stationarity:
    trend_p: float  # Mann–Kendall p-value (small: a trend)
    unit_root_p: float  # von Neumann ratio's simulated p-value (small: no unit root)

    def stationary(self, alpha: float, level: float | None = None) -> bool:
        """No trend at ``alpha`` and the unit root rejected at ``level`` (default alpha:
        one window on its own; the scan uses :func:`scan_level`)."""
        return self.trend_p >= alpha and self.unit_root_p <= (alpha if level is None
                                                              else level)


def stationarity_test(values: Sequence[float]) -> Stationarity:
    """Mann–Kendall and unit-root p-values of ``values`` (at least MIN_POINTS of them)."""
    x = np.asarray(values, dtype=float)
    if len(x) < MIN_POINTS:
        raise ValueError(f"a stationarity test needs {MIN_POINTS} points, got {len(x)}")
    if np.ptp(x) == 0:
        return Stationarity(1.0, 0.0)
    trend = float(mann_kendall_p(x[None, :])[0])
    ratio = von_neumann(x[None, :])
    return Stationarity(trend, float(_calibration(len(x)).p_value(ratio)[0]))


def stationarity_rule(values: Sequence[float | None], window: int, alpha: float) -> int | None:
    """First index whose trailing ``window`` values are stationary: no Mann–Kendall trend
    at ``alpha`` and the unit root rejected at the scan's level for that point (the whole
    scan fires on at most ``alpha`` of random walks, at any length)."""
    window = max(window, MIN_POINTS)
    fired = np.flatnonzero(stationary_windows(values, window, alpha))
    return int(fired[0]) + window - 1 if fired.size else None


def stationary_windows(values: Sequence[float | None], window: int,
                       alpha: float) -> np.ndarray:
    """Per trailing window (the one ending at index ``window - 1 + j``): does the rule fire
    there? Windows with a missing value do not."""
    window = max(window, MIN_POINTS)
    x = np.array([np.nan if v is None else v for v in values], dtype=float)
    if len(x) < window:
        return np.zeros(0, bool)
    windows = np.lib.stride_tricks.sliding_window_view(x, window)
    complete = ~np.isnan(windows).any(axis=1)
    constant = complete & (windows.max(axis=1) == windows.min(axis=1))
    test = complete & ~constant
    fires = constant.copy()
    if test.any():
        w = windows[test]
        ends = np.flatnonzero(test) + window  # points up to each window's end
        levels = scan_level(window, alpha) * spending(ends)
        cal = _calibration(window)
        fires[test] = ((mann_kendall_p(w) >= alpha)
                       & (cal.p_value(von_neumann(w)) <= levels))
    return fires


def spending(points: np.ndarray | int) -> np.ndarray:
    """g(n): the share of ``beta`` given to the window ending at the n-th point."""
    n = np.asarray(points, dtype=float)
    return np.where(n <= FLAT_POINTS, 1.0, (FLAT_POINTS / np.maximum(n, 1)) ** SPENDING_POWER)


def scan_level(window: int, alpha: float) -> float:
    """beta: the per-window level at which the scan of ``window``-point windows fires on at
    most ``alpha`` of random walks, whatever their length."""
    return _calibration(max(window, MIN_POINTS)).level(alpha)


def von_neumann(windows: np.ndarray) -> np.ndarray:
    """Sum of squared successive differences over sum of squared deviations, per row."""
    centred = windows - windows.mean(axis=-1, keepdims=True)
    spread = (centred * centred).sum(axis=-1)
    steps = np.diff(windows, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, (steps * steps).sum(axis=-1) / spread, np.inf)


def mann_kendall_p(windows: np.ndarray) -> np.ndarray:
    """Two-sided Mann–Kendall p-value per row: P(|S| ≥ |s|) under no trend, from the exact
    distribution of S without ties (a tie adds 0 to S)."""
    n = windows.shape[-1]
    i, j = np.triu_indices(n, 1)
    s = np.abs(np.sign(windows[..., j] - windows[..., i]).sum(axis=-1)).astype(int)
    return _mann_kendall_tail(n)[s]


@cache
def _mann_kendall_tail(n: int) -> np.ndarray:
    """P(|S| ≥ s) for s = 0 … n(n-1)/2: S = pairs - 2·inversions of a random permutation."""
    counts = np.ones(1)
    for k in range(2, n + 1):  # inversions of k items: the previous law + uniform 0..k-1
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        size = len(counts) + k - 1
        top = np.minimum(np.arange(size) + 1, len(counts))
        bottom = np.maximum(np.arange(size) - k + 1, 0)
        counts = (cum[top] - cum[bottom]) / k
    pairs = n * (n - 1) // 2
    s = np.abs(pairs - 2 * np.arange(pairs + 1))  # |S| for each count of inversions
    tail = np.zeros(pairs + 2)
    np.add.at(tail, s, counts)
    return np.minimum(np.cumsum(tail[::-1])[::-1][:pairs + 1], 1.0)


@dataclass(frozen=True)
class _Calibration:
    null: np.ndarray  # von Neumann ratios of random-walk windows, sorted
    minima: np.ndarray  # per simulated walk: min over its windows of p / g(n), sorted
    tail: float  # sum of g(n) beyond the simulated length (union bound)

    def p_value(self, ratios: np.ndarray) -> np.ndarray:
        """(1 + simulated windows with a ratio at least as large) / (1 + their number)."""
        above = self.null.size - np.searchsorted(self.null, ratios, side="left")
        return (above + 1) / (self.null.size + 1)

    def level(self, alpha: float) -> float:
        """The largest beta with (walks that fire) + beta·tail ≤ alpha less the one-sided 95%
        sampling error of that rate (so the rate itself, not only its estimate, is ≤ alpha)."""
        walks = self.minima.size
        budget = alpha - MONTE_CARLO_Z * np.sqrt(alpha * (1 - alpha) / walks)
        fired = np.arange(1, walks + 1) / walks  # rate once beta reaches minima[k]
        over = np.flatnonzero(fired + self.minima * self.tail > budget)
        k = int(over[0]) if over.size else walks
        below_next = np.nextafter(self.minima[k], 0) if k < walks else np.inf
        return float(max(0.0, min(below_next, (budget - k / walks) / self.tail)))


@cache
def _calibration(window: int) -> _Calibration:
    """Seeded random walks: the null law of the window's ratio and the scan's minima."""
    length = max(CALIBRATION_POINTS, 4 * window)
    rng = np.random.default_rng([CALIBRATION_SEED, window])
    per_walk = length - window + 1
    chunk = max(1, 2_000_000 // length)
    ratios = np.empty((CALIBRATION_WALKS, per_walk))
    for start in range(0, CALIBRATION_WALKS, chunk):
        walks = rng.standard_normal((min(chunk, CALIBRATION_WALKS - start), length))
        ratios[start:start + len(walks)] = _sliding_von_neumann(walks.cumsum(axis=1), window)
    null = np.sort(ratios, axis=None)
    cal = _Calibration(null, np.zeros(0), 0.0)
    shares = spending(np.arange(window, length + 1))
    minima = np.sort((cal.p_value(ratios) / shares).min(axis=1))
    tail = float(spending(np.arange(length + 1, 1_000_000)).sum())
    return _Calibration(null, minima, tail)


def _sliding_von_neumann(walks: np.ndarray, window: int) -> np.ndarray:
    """von_neumann of every ``window``-point window of each row, from running sums."""
    x = walks - walks.mean(axis=1, keepdims=True)
    zero = np.zeros((len(x), 1))
    s1 = np.concatenate([zero, np.cumsum(x, axis=1)], axis=1)
    s2 = np.concatenate([zero, np.cumsum(x * x, axis=1)], axis=1)
    d2 = np.concatenate([zero, np.cumsum(np.diff(x, axis=1) ** 2, axis=1)], axis=1)
    total = s1[:, window:] - s1[:, :-window]
    spread = s2[:, window:] - s2[:, :-window] - total * total / window
    steps = d2[:, window - 1:] - d2[:, :-window + 1]
    return steps / spread
