"""``early_bird.*``: mask tracking during dense training, its detectors and early stopping.

``epsilon`` is relative: the distance rule compares mask distances with ``epsilon`` times the
largest normalised Hamming distance two masks at the tracked pruning fraction p can have,
2·min(p, 1 - p) (``detectors.max_distance``), so one value means the same at every p: at
20% pruning two unrelated masks differ by about 0.32 of a largest 0.4, and the default 0.1
asks for less than 0.04. ``alpha`` bounds the stationarity detector's false alarms on random
walks over the whole scan, not per window (``detectors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config import check_choices, require, setting

SERIES = ("window_max_distance", "distance", "changed", "nuclear_norm")
CHANNEL_PREFIX = "channel_"  # the channel mask's series: channel_distance, ...


@dataclass
class EarlyBirdSettings:
    enabled: bool = setting(
        False, "track the level-1 magnitude mask during dense training (dense/early_bird.json)"
    )
    every: int = setting(1, "track every N epochs")
    every_rounds: int = setting(
        0, "track every N Elephas rounds instead (0 = by epochs); stop and compare still act "
        "at the end of the epoch where the detector fires, the nearest rewind point"
    )
    channel_ratio: float | None = setting(
        None, "also track network slimming's channel mask: this fraction of all BatchNorm "
        "channels, smallest |gamma| first, pruned (You et al.; see train.slimming_l1)"
    )
    masks: Literal["magnitude", "channels"] = setting(
        "magnitude", "the mask the detectors read: the level-1 magnitude mask, or the "
        "channel mask (needs channel_ratio)"
    )
    window: int = setting(5, "distance rule: the last W mask distances must all be < epsilon")
    epsilon: float = setting(
        0.1, "distance rule: threshold on the normalised Hamming distance, as a fraction of "
        "the largest distance two masks at the tracked pruning fraction p can have, "
        "2·min(p, 1 - p) (0.4 at p = 0.2; two unrelated masks differ by 1 - min(p, 1 - p) of "
        "it, 0.8 at p = 0.2); 0.1 is You et al.'s 0.1 at p = 0.5"
    )
    series: Literal["window_max_distance", "distance", "changed", "nuclear_norm"] = setting(
        "window_max_distance", "the series the stationarity detector tests: the largest "
        "distance to the last W masks (levels off once the mask settles), the distance to the "
        "previous mask, the fraction of kept weights newly kept, or the masks' nuclear norm"
    )
    stationarity_window: int = setting(
        8, "stationarity detector: trailing points tested (at least 6); longer windows "
        "detect a settled series more often (docs/early-bird.md)"
    )
    alpha: float = setting(
        0.05, "stationarity detector: level of the Mann–Kendall trend test, and the largest "
        "rate at which the whole scan fires on a random walk, at any series length"
    )
    stop: bool = setting(False, "end dense training `patience` tracked points after detection")
    detector: Literal["distance", "stationarity"] = setting(
        "stationarity", "the detector that stops training (early_bird.stop)"
    )
    patience: int = setting(0, "tracked points trained after the detection before stopping")
    compare: bool = setting(
        False, "also train tickets drawn at the chosen detector's point (rows early_bird*), "
        "next to those of the fully trained network; needs stop: false"
    )

    @property
    def series_prefix(self) -> str:
        """The prefix of the series the detectors read."""
        return CHANNEL_PREFIX if self.masks == "channels" else ""

    def __post_init__(self) -> None:
        check_choices(self)
        require(self.every >= 1, "every", "must be at least 1")
        require(self.every_rounds >= 0, "every_rounds", "must be 0 (by epochs) or more")
        require(self.channel_ratio is None or 0 < self.channel_ratio < 1, "channel_ratio",
                f"must be in (0, 1), got {self.channel_ratio}")
        require(self.masks == "magnitude" or self.channel_ratio is not None, "masks",
                "channels needs early_bird.channel_ratio")
        require(self.window >= 1, "window", "must be at least 1")
        require(0 < self.epsilon < 1, "epsilon", f"must be in (0, 1), got {self.epsilon}")
        require(self.stationarity_window >= 6, "stationarity_window",
                f"must be at least 6, got {self.stationarity_window}")
        require(0 < self.alpha < 1, "alpha", f"must be in (0, 1), got {self.alpha}")
        require(self.patience >= 0, "patience", "must be 0 or more")
        require(not (self.compare and self.stop), "compare",
                "needs the fully trained network: set early_bird.stop=false")
