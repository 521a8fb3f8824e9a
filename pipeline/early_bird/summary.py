"""The early-bird section of a run's report and its figures (written under ``figures/``)."""

from __future__ import annotations

import logging
from typing import Any

from pipeline.early_bird.figures import distance_matrix_png, series_png
from pipeline.early_bird.series import distance_matrix, flat
from pipeline.early_bird.tracker import (
    CHANNELS,
    EARLY_BIRD_DIR,
    EARLY_BIRD_JSON,
    MAGNITUDE,
    mask_name,
    where,
)

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
    from pipeline.report.statistics import CONFIDENCE, t_interval
    from pipeline.report.verdicts import judge
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
                     f"{interval.mean:+.2f}{ci} points (n={interval.n}): "
                     f"**{judge(diffs)}**")
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
        parts = [f"{name} at {where(v)}" if v else f"{name} did not fire"
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
    kind = CHANNELS if s.masks == "channels" else MAGNITUDE
    flats = [flat(masks_from_bytes(rep.dense_dir().read_bytes(EARLY_BIRD_DIR,
                                                              mask_name(p, kind))))
             for p in points]
    run.store.write_bytes(distance_matrix_png([tick(p) for p in points],
                                              distance_matrix(flats)), "figures", MATRIX_PNG)
    run.store.write_bytes(series_png(points, record["detections"]), "figures", SERIES_PNG)
    return "\n\n".join([
        "## Early-bird tickets",
        tracking_text(s),
        f"The detectors read the {kind_text(s)}. Distance rule (You et al.): the last "
        f"{s.window} distances between consecutive masks below {s.epsilon} of the largest "
        "distance two masks at the tracked pruning fraction can have. Stationarity: over the "
        f"last {s.stationarity_window} points of the `{s.series_prefix}{s.series}` series, no "
        f"Mann–Kendall trend and a von Neumann ratio that rejects a random walk, with levels "
        f"set so that the whole scan fires on at most {s.alpha:.0%} of simulated random walks "
        "of any length (a series shorter than a few windows rarely qualifies).",
        "\n".join(lines),
        *(["Tickets drawn at the early-bird point (`early_bird.compare`, rows `early_bird*`), "
           "against the tickets of the fully trained network, with the same rewind points, "
           "controls and seeds:\n\n" + "\n".join(comparison_lines(rows))]
          if rows and comparison_lines(rows) else []),
        f"![mask distances](figures/{MATRIX_PNG})\n\n![series](figures/{SERIES_PNG})",
        f"Series and detections: `replicate-<i>/dense/{EARLY_BIRD_JSON}`.",
    ])


def tick(p: dict[str, Any]) -> str:
    return str(p["epoch"]) if p.get("round") is None else f"r{p['round']}"


def tracking_text(s) -> str:  # noqa: ANN001 - EarlyBirdSettings
    every = (f"every {s.every_rounds} Elephas round(s)" if s.every_rounds
             else f"every {s.every} epoch(s)")
    text = f"The level-1 magnitude mask was drawn {every} of dense training"
    if s.channel_ratio:
        text += (f", and the channel mask pruning {100 * s.channel_ratio:.0f}% of all "
                 "BatchNorm channels by |γ| (network slimming)")
    text += "."
    if s.every_rounds:
        text += (" Stopping and early-bird tickets act at the end of the epoch in which the "
                 "detector fires: rewind points and checkpoints are per epoch.")
    return text


def kind_text(s) -> str:  # noqa: ANN001 - EarlyBirdSettings
    return "channel masks" if s.masks == "channels" else "magnitude masks"
