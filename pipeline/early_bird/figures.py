"""The early-bird figures: the mask-distance matrix (You et al.'s Fig. 2) and the series over
training with each detector's firing point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from pipeline.early_bird.settings import CHANNEL_PREFIX
from pipeline.early_bird.tracker import where
from pipeline.report.figures import png_bytes

SERIES_LABELS = {"distance": "distance to the previous mask",
                 "window_max_distance": "max distance to the last W masks",
                 "changed": "kept weights newly kept", "nuclear_norm": "nuclear norm (relative)"}
DETECTOR_STYLES = {"distance": ("tab:red", "--"), "stationarity": ("tab:purple", ":")}


def distance_matrix_png(epochs: Sequence[str], matrix: np.ndarray) -> bytes:
    fig = Figure(figsize=(6.0, 5.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="viridis", origin="upper")
    ticks = range(len(epochs))
    step = max(1, len(epochs) // 10)
    ax.set_xticks(list(ticks)[::step], [str(e) for e in epochs][::step])
    ax.set_yticks(list(ticks)[::step], [str(e) for e in epochs][::step])
    ax.set_xlabel("tracked point (epoch, or rN: round N)")
    ax.set_ylabel("tracked point")
    ax.set_title("Normalised Hamming distance between tracked masks")
    fig.colorbar(image, ax=ax, label="distance")
    return png_bytes(fig)


def series_png(points: Sequence[Mapping[str, Any]],
               detections: Mapping[str, Mapping[str, int] | None]) -> bytes:
    fig = Figure(figsize=(9.0, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    positions = [p.get("position", p["epoch"]) for p in points]
    for prefix, kind in (("", ""), (CHANNEL_PREFIX, "channels: ")):
        for key, label in SERIES_LABELS.items():
            if prefix + key not in points[0]:
                continue
            values = [np.nan if p.get(prefix + key) is None else p[prefix + key]
                      for p in points]
            ax.plot(positions, values, marker="o", markersize=3, label=kind + label,
                    linestyle="--" if prefix else "-")
    for name, found in detections.items():
        if found:
            color, style = DETECTOR_STYLES.get(name, ("black", "-"))
            ax.axvline(positions[found["index"]], color=color, linestyle=style,
                       label=f"{name} detector fires ({where(found)})")
    ax.set_xlabel("dense epoch")
    ax.set_ylabel("value")
    ax.set_title("Early-bird series over dense training")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right upper", fontsize="small")
    return png_bytes(fig)
