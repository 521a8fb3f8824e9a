"""Mask tracking in the dense stage, on the driver, between epochs or Elephas rounds.

At every tracked point (each ``early_bird.every``-th epoch, or each ``every_rounds``-th
round) the driver draws the magnitude mask of the first pruning level under the run's
policy from the weights it already holds and, with ``channel_ratio``, the BatchNorm channel
mask. It stores each bit-packed (``dense/early_bird/``), extends the series and reruns both
detectors; ``dense/early_bird.json`` (written atomically after every point) holds the
series, the detections and, when training stopped early, where. A resumed dense stage keeps
the points up to its last finished epoch and drops the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pipeline.early_bird.detectors import distance_rule, stationarity_rule
from pipeline.early_bird.series import flat, point
from pipeline.early_bird.settings import CHANNEL_PREFIX, EarlyBirdSettings

log = logging.getLogger(__name__)

EARLY_BIRD_DIR = "early_bird"
EARLY_BIRD_JSON = "early_bird.json"
DETECTORS = ("distance", "stationarity")
MAGNITUDE, CHANNELS = "mask", "channels"


def mask_name(where: Mapping[str, Any] | int, kind: str = MAGNITUDE) -> str:
    """The file of a tracked point's mask (a point's record, or an epoch)."""
    if isinstance(where, int):
        where = {"epoch": where}
    if where.get("round") is not None:
        return f"{kind}-round-{where['round']:05d}.npz"
    return f"{kind}-{where['epoch']:03d}.npz"


class EarlyBirdTracker:
    """The tracked masks and series of one replicate's dense stage."""

    def __init__(self, run, spec, settings: EarlyBirdSettings,  # noqa: ANN001
                 resume_through: int, rounds_before: int = 0) -> None:
        from pipeline.experiment.mask_stage import policy_for
        from pipeline.tickets import MaskedSpec

        self.run, self.settings = run, settings
        self.policy = policy_for(run)
        self.model = MaskedSpec(spec).build()
        self.store = run.dense_dir()
        self.points: list[dict[str, Any]] = []
        self.flats: dict[str, list[np.ndarray]] = {MAGNITUDE: [], CHANNELS: []}
        self.seconds = 0.0
        self.rounds = rounds_before
        if self.store.exists(EARLY_BIRD_JSON):
            saved = self.store.read_json(EARLY_BIRD_JSON)
            self.seconds = float(saved.get("tracking_seconds", 0.0))
            for p in saved.get("points", []):
                if p["epoch"] <= resume_through:
                    self.points.append(p)
                    for kind in self._kinds():
                        self.flats[kind].append(flat(self.load(p, kind)))

    def _kinds(self) -> tuple[str, ...]:
        return (MAGNITUDE, CHANNELS) if self.settings.channel_ratio else (MAGNITUDE,)

    def load(self, where: Mapping[str, Any], kind: str = MAGNITUDE) -> dict[str, np.ndarray]:
        from pipeline.tickets import masks_from_bytes

        return masks_from_bytes(self.store.read_bytes(EARLY_BIRD_DIR, mask_name(where, kind)))

    @property
    def tracks_rounds(self) -> bool:
        return self.settings.every_rounds > 0

    def after_round(self, epoch: int, index: int, count: int, step: int,
                    weights: Callable[[], list[np.ndarray]]) -> None:
        """Round ``index`` of ``count`` in ``epoch`` is done; track it if it is due
        (``weights()`` reads the master model's only then)."""
        self.rounds += 1
        if self.tracks_rounds and self.rounds % self.settings.every_rounds == 0:
            self.observe(epoch, step, weights(), round_=self.rounds,
                         position=epoch - 1 + (index + 1) / count)

    def after_epoch(self, epoch: int, step: int, weights: list[np.ndarray]) -> None:
        if not self.tracks_rounds and epoch % self.settings.every == 0:
            self.observe(epoch, step, weights)

    def observe(self, epoch: int, step: int, weights: list[np.ndarray],
                round_: int | None = None, position: float | None = None) -> dict[str, Any]:
        """Track the masks of ``weights`` (the plain model's); returns the detections."""
        from pipeline.early_bird.channels import channel_masks
        from pipeline.tickets import masks_at_level, masks_to_bytes, ones_masks, rewind

        start = time.monotonic()
        rewind(self.model, weights, ones_masks(self.model))
        record: dict[str, Any] = {"epoch": epoch, "round": round_, "step": step,
                                  "position": float(epoch if position is None else position)}
        drawn = {MAGNITUDE: masks_at_level(self.model, self.policy, 1)}
        if self.settings.channel_ratio:
            drawn[CHANNELS] = channel_masks(self.model, self.settings.channel_ratio)
        for kind, masks in drawn.items():
            current = flat(masks)
            self.store.write_bytes(masks_to_bytes(masks), EARLY_BIRD_DIR,
                                   mask_name(record, kind))
            prefix = CHANNEL_PREFIX if kind == CHANNELS else ""
            values = point(self.flats[kind], current, masks, self.settings.window)
            record.update({prefix + k: v for k, v in values.items()})
            self.flats[kind].append(current)
        self.points.append(record)
        detections = self.detections()
        self.seconds += time.monotonic() - start
        self.save()
        d = record[self.settings.series_prefix + "distance"]
        log.info("early-bird: epoch %d%s mask distance %s; fired: %s (%.2fs)", epoch,
                 "" if round_ is None else f" round {round_}",
                 "-" if d is None else f"{d:.4f}",
                 ", ".join(f"{k} at {where(v)}" for k, v in detections.items() if v)
                 or "none", time.monotonic() - start)
        return detections

    def pruned_fraction(self) -> float | None:
        """The fraction the detectors' latest tracked mask prunes (None before any)."""
        kind = CHANNELS if self.settings.masks == "channels" else MAGNITUDE
        if not self.flats[kind]:
            return None
        last = self.flats[kind][-1]
        return 1.0 - np.count_nonzero(last) / last.size

    def detections(self) -> dict[str, dict[str, int] | None]:
        s = self.settings
        prefix = s.series_prefix
        fired = {
            # epsilon is a fraction of the largest distance at the tracked pruning fraction
            "distance": distance_rule([p[prefix + "distance"] for p in self.points],
                                      s.window, s.epsilon, pruned=self.pruned_fraction()),
            "stationarity": stationarity_rule([p[prefix + s.series] for p in self.points],
                                              s.stationarity_window, s.alpha),
        }
        return {name: None if index is None else {
            "index": index, "epoch": self.points[index]["epoch"],
            "round": self.points[index].get("round"), "step": self.points[index]["step"]}
            for name, index in fired.items()}

    def should_stop(self) -> bool:
        """``early_bird.stop`` and the chosen detector fired ``patience`` points ago."""
        s = self.settings
        found = self.detections()[s.detector]
        return bool(s.stop and found and len(self.points) - 1 - found["index"] >= s.patience)

    def save(self, stopped_at: int | None = None) -> None:
        from pipeline.config import to_dict

        record = {"settings": to_dict(self.settings), "points": self.points,
                  "detections": self.detections(), "tracking_seconds": round(self.seconds, 3)}
        if stopped_at is not None:
            record["stopped_at_epoch"] = stopped_at
        self.store.write_json(record, EARLY_BIRD_JSON)


def where(found: Mapping[str, Any]) -> str:
    """A detection's place: ``epoch 4``, or ``round 13 (epoch 4)``."""
    if found.get("round") is not None:
        return f"round {found['round']} (epoch {found['epoch']})"
    return f"epoch {found['epoch']}"
