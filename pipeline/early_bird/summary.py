"""The early-bird section of a run's report and its figures (written under ``figures/``)."""

from __future__ import annotations

import logging
from typing import Any

from pipeline.early_bird.figures import distance_matrix_png, series_png
from pipeline.early_bird.series import distance_matrix, flat
from pipeline.early_bird.tracker import EARLY_BIRD_DIR, EARLY_BIRD_JSON, mask_name

log = logging.getLogger(__name__)

MATRIX_PNG = "early_bird_distances.png"
SERIES_PNG = "early_bird_series.png"


def _read(rep) -> dict[str, Any] | None:  # noqa: ANN001 - a RunDirectory
    store = rep.dense_dir()
    return store.read_json(EARLY_BIRD_JSON) if store.exists(EARLY_BIRD_JSON) else None


def early_bird_markdown(run, replicates: list) -> str:  # noqa: ANN001 - RunDirectory, its replicates
    """``## Early-bird tickets``: each replicate's detections and the epochs saved; the
    figures of the first replicate are written to the run's ``figures/``."""
    from pipeline.tickets import masks_from_bytes

    epochs = run.settings.train.epochs
    s = run.settings.early_bird
    lines, first = [], None
    for rep in replicates:
        record = _read(rep)
        if record is None:
            continue
        first = first or (rep, record)
        found = record.get("detections", {})
        stopped = record.get("stopped_at_epoch")
        parts = [f"{name} at epoch {v['epoch']}" if v else f"{name} did not fire"
                 for name, v in found.items()]
        saved = (f"; training stopped after epoch {stopped} of {epochs} "
                 f"({100 * (epochs - stopped) / epochs:.0f}% of the dense epochs saved)"
                 if stopped else "")
        lines.append(f"- replicate {rep.replicate_index}: {', '.join(parts)}{saved}; "
                     f"tracking took {record.get('tracking_seconds', 0):.1f}s")
    if first is None:
        return ""
    rep, record = first
    points = record["points"]
    flats = [flat(masks_from_bytes(rep.dense_dir().read_bytes(EARLY_BIRD_DIR,
                                                              mask_name(p["epoch"]))))
             for p in points]
    run.store.write_bytes(distance_matrix_png([p["epoch"] for p in points],
                                              distance_matrix(flats)), "figures", MATRIX_PNG)
    run.store.write_bytes(series_png(points, record["detections"]), "figures", SERIES_PNG)
    return "\n\n".join([
        "## Early-bird tickets",
        f"The level-1 magnitude mask was drawn every {s.every} epoch(s) of dense training. "
        f"Distance rule (You et al.): the last {s.window} distances between consecutive "
        f"masks below {s.epsilon}. Stationarity: over the last {s.stationarity_window} "
        f"points of the `{s.series}` series, no Mann–Kendall trend (p ≥ {s.alpha}) and an "
        f"ADF test rejecting a unit root (p < {s.alpha}).",
        "\n".join(lines),
        f"![mask distances](figures/{MATRIX_PNG})\n\n![series](figures/{SERIES_PNG})",
        f"Series and detections: `replicate-<i>/dense/{EARLY_BIRD_JSON}`.",
    ])
