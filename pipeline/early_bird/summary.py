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


def comparison_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per level and rewind point: full-training ticket − early-bird ticket, paired by
    replicate, in points, with its interval and verdict."""
    from pipeline.early_bird.compare import EARLY_BIRD_TICKET
    from pipeline.report.statistics import CONFIDENCE, t_interval, verdict
    from pipeline.tickets.controls import TICKET

    ok = [r for r in rows if r.get("status") == "ok" and (r.get("level") or 0) > 0]
    keys = sorted({(r["level"], r["rewind_epoch"]) for r in ok
                   if r["control"] == EARLY_BIRD_TICKET})
    lines = []
    for level, k in keys:
        def top1(control: str, level: int = level, k: int = k) -> dict[int, float]:
            return {r["replicate"]: r["top1"] for r in ok if r["level"] == level
                    and r["rewind_epoch"] == k and r["control"] == control}
        full, early = top1(TICKET), top1(EARLY_BIRD_TICKET)
        diffs = [100 * (full[i] - early[i]) for i in sorted(set(full) & set(early))]
        interval = t_interval(diffs, CONFIDENCE)
        ci = ("" if interval.n < 2 else
              f" [{interval.low:+.2f}, {interval.high:+.2f}]")
        lines.append(f"- level {level}, rewind {k}: full-training ticket − early-bird ticket "
                     f"{interval.mean:+.2f}{ci} points (n={interval.n}): the full-training "
                     f"ticket {verdict(interval.n, interval.low, interval.high)} the "
                     "early-bird ticket")
    return lines


def early_bird_markdown(run, replicates: list,  # noqa: ANN001 - RunDirectory, its replicates
                        rows: list[dict[str, Any]] | None = None) -> str:
    """``## Early-bird tickets``: each replicate's detections and the epochs saved, and
    with ``early_bird.compare`` the accuracy cost of the early tickets; the figures of the
    first replicate are written to the run's ``figures/``."""
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
        chosen = found.get(s.detector)
        if not stopped and chosen:
            saved = (f"; stopping at the {s.detector} detector's epoch {chosen['epoch']} "
                     f"would save {100 * (epochs - chosen['epoch']) / epochs:.0f}% of the "
                     "dense epochs")
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
        *(["Tickets drawn at the early-bird point (`early_bird.compare`, rows `early_bird*`), "
           "against the tickets of the fully trained network, with the same rewind points, "
           "controls and seeds:\n\n" + "\n".join(comparison_lines(rows))]
          if rows and comparison_lines(rows) else []),
        f"![mask distances](figures/{MATRIX_PNG})\n\n![series](figures/{SERIES_PNG})",
        f"Series and detections: `replicate-<i>/dense/{EARLY_BIRD_JSON}`.",
    ])
