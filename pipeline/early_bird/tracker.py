"""Mask tracking in the dense stage, on the driver, between epochs.

After every ``early_bird.every``-th epoch the driver draws the magnitude mask of the first
pruning level under the run's policy from the weights it already holds, stores it
bit-packed (``dense/early_bird/mask-EEE.npz``), extends the series and reruns both
detectors; ``dense/early_bird.json`` (written atomically after every point) holds the
series, the detections and, when training stopped early, where. A resumed dense stage
keeps the points up to its last finished epoch and drops the rest.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from pipeline.early_bird.detectors import distance_rule, stationarity_rule
from pipeline.early_bird.series import flat, point
from pipeline.early_bird.settings import EarlyBirdSettings

log = logging.getLogger(__name__)

EARLY_BIRD_DIR = "early_bird"
EARLY_BIRD_JSON = "early_bird.json"
DETECTORS = ("distance", "stationarity")


def mask_name(epoch: int) -> str:
    return f"mask-{epoch:03d}.npz"


class EarlyBirdTracker:
    """The tracked masks and series of one replicate's dense stage."""

    def __init__(self, run, spec, settings: EarlyBirdSettings,  # noqa: ANN001
                 resume_through: int) -> None:
        from pipeline.experiment.mask_stage import policy_for
        from pipeline.tickets import MaskedSpec

        self.run, self.settings = run, settings
        self.policy = policy_for(run)
        self.model = MaskedSpec(spec).build()
        self.store = run.dense_dir()
        self.points: list[dict[str, Any]] = []
        self.flats: list[np.ndarray] = []
        self.seconds = 0.0
        if self.store.exists(EARLY_BIRD_JSON):
            saved = self.store.read_json(EARLY_BIRD_JSON)
            self.seconds = float(saved.get("tracking_seconds", 0.0))
            for p in saved.get("points", []):
                if p["epoch"] <= resume_through:
                    self.points.append(p)
                    self.flats.append(flat(self._load(p["epoch"])))

    def _load(self, epoch: int) -> dict[str, np.ndarray]:
        from pipeline.tickets import masks_from_bytes

        return masks_from_bytes(self.store.read_bytes(EARLY_BIRD_DIR, mask_name(epoch)))

    def due(self, epoch: int) -> bool:
        return epoch % self.settings.every == 0

    def observe(self, epoch: int, step: int, weights: list[np.ndarray]) -> dict[str, Any]:
        """Track the mask of ``weights`` (the plain model's, after ``epoch``); returns the
        detections so far."""
        from pipeline.tickets import masks_at_level, masks_to_bytes, ones_masks, rewind

        start = time.monotonic()
        rewind(self.model, weights, ones_masks(self.model))
        masks = masks_at_level(self.model, self.policy, 1)
        current = flat(masks)
        self.store.write_bytes(masks_to_bytes(masks), EARLY_BIRD_DIR, mask_name(epoch))
        values = point(self.flats, current, masks, self.settings.window)
        self.points.append({"epoch": epoch, "step": step, **values})
        self.flats.append(current)
        detections = self.detections()
        self.seconds += time.monotonic() - start
        self.save()
        d = values["distance"]
        log.info("early-bird: epoch %d mask distance %s, nuclear norm %.4f; fired: %s (%.2fs)",
                 epoch, "-" if d is None else f"{d:.4f}", values["nuclear_norm"],
                 ", ".join(f"{k} at epoch {v['epoch']}" for k, v in detections.items()
                           if v) or "none", time.monotonic() - start)
        return detections

    def detections(self) -> dict[str, dict[str, int] | None]:
        s = self.settings
        fired = {
            "distance": distance_rule([p["distance"] for p in self.points], s.window, s.epsilon),
            "stationarity": stationarity_rule([p[s.series] for p in self.points],
                                              s.stationarity_window, s.alpha),
        }
        return {name: None if index is None else {
            "index": index, "epoch": self.points[index]["epoch"],
            "step": self.points[index]["step"]} for name, index in fired.items()}

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

    def tracked_masks(self) -> list[np.ndarray]:
        return list(self.flats)
