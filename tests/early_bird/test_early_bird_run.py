"""Early-bird tracking in the main job on the digits (LeNet-300-100, 12 dense epochs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.early_bird.detectors import distance_threshold, stationarity_rule
from pipeline.early_bird.series import flat
from pipeline.early_bird.tracker import EARLY_BIRD_DIR, EARLY_BIRD_JSON, mask_name
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_layout import RunLayout
from pipeline.experiment.settings import PruneJobSettings
from pipeline.store import ArtifactStore
from pipeline.tickets import masks_from_bytes

LENET = Path(__file__).resolve().parents[2] / "conf" / "lenet_digits.yaml"
EPOCHS = 12


def _settings(data: str, output: str, *overrides: str) -> PruneJobSettings:
    return load_config(PruneJobSettings, LENET, [
        f"data.url={data}", f"run.output={output}", "run.replicates=1", "prune.levels=1",
        "rewind.epochs=[0]", "grid.controls=[]", f"train.epochs={EPOCHS}",
        "early_bird.enabled=true", *overrides])


def _record(outcome) -> dict:  # noqa: ANN001
    return RunLayout(outcome.run_url).replicate(0).dense_dir().read_json(EARLY_BIRD_JSON)


def _tracked(outcome, epoch: int) -> dict:  # noqa: ANN001
    dense = RunLayout(outcome.run_url).replicate(0).dense_dir()
    return masks_from_bytes(dense.read_bytes(EARLY_BIRD_DIR, mask_name(epoch)))


@pytest.fixture(scope="module")
def tracked(spark, sample_dataset, tmp_path_factory):
    return run_prune_job(_settings(sample_dataset, str(tmp_path_factory.mktemp("eb"))),
                         spark=spark)


def test_the_series_falls_and_the_detectors_read_it(tracked):
    record = _record(tracked)
    points = record["points"]
    assert [p["epoch"] for p in points] == list(range(1, EPOCHS + 1))
    distances = [p["distance"] for p in points[1:]]
    assert distances[-1] < distances[0]
    found = record["detections"]["distance"]
    assert found is not None and found["epoch"] < EPOCHS, record["detections"]
    # epsilon is relative: 0.1 of the largest distance at the tracked pruning fraction
    pruned = 1 - np.mean(flat(_tracked(tracked, EPOCHS)))
    threshold = distance_threshold(0.1, pruned)
    assert threshold == pytest.approx(0.1 * 2 * min(pruned, 1 - pruned))
    assert all(d < threshold for d in distances[found["index"] - 5:found["index"]])
    # The calibrated stationarity rule as the tracker ran it; 12 epochs are too few points
    # for it to tell this series from a random walk, so it must not fire before the series
    # has come within twice its final level.
    settings = record["settings"]
    series = [p[settings["series"]] for p in points]
    index = stationarity_rule(series, settings["stationarity_window"], settings["alpha"])
    stationary = record["detections"]["stationarity"]
    assert (stationary and stationary["index"]) == index
    if index is not None:
        assert series[index] <= 2 * series[-1]
    report = ArtifactStore(tracked.run_url).read_text("report.md")
    assert "## Early-bird tickets" in report
    assert ArtifactStore(tracked.run_url).exists("figures", "early_bird_distances.png")


def test_the_last_tracked_mask_is_the_level_1_mask(tracked):
    rep = RunLayout(tracked.run_url).replicate(0)
    level1 = masks_from_bytes(rep.store.read_bytes(*rep.masks(1, 0)))
    np.testing.assert_array_equal(flat(_tracked(tracked, EPOCHS)), flat(level1))


@pytest.fixture(scope="module")
def stopped(spark, sample_dataset, tmp_path_factory):
    settings = _settings(sample_dataset, str(tmp_path_factory.mktemp("eb-stop")),
                         "early_bird.stop=true", "early_bird.detector=distance")
    return settings, run_prune_job(settings, spark=spark)


def test_stopping_trains_fewer_epochs_and_draws_the_masks_there(stopped, tracked):
    _, outcome = stopped
    record = _record(outcome)
    stop = record["stopped_at_epoch"]
    assert stop == record["detections"]["distance"]["epoch"] < EPOCHS
    assert stop == _record(tracked)["detections"]["distance"]["epoch"]  # same run up to there
    rep = RunLayout(outcome.run_url).replicate(0)
    assert not rep.dense_dir().exists(f"{rep.dense_weights(stop + 1)}.npz")
    assert rep.dense_dir().read_json("_COMPLETE")["epochs_saved"] == EPOCHS - stop
    dense_row = [r for r in outcome.rows if r["cell"] == "dense"][0]
    assert dense_row["epochs"] == stop
    level1 = masks_from_bytes(rep.store.read_bytes(*rep.masks(1, 0)))
    np.testing.assert_array_equal(flat(_tracked(outcome, stop)), flat(level1))
    # the tickets still train the whole budget
    ticket = [r for r in outcome.rows if r["cell"] == "L1-k0-none"][0]
    assert ticket["epochs"] == EPOCHS


def test_resume_after_a_kill_keeps_the_detection(spark, stopped):
    settings, outcome = stopped
    rep = RunLayout(outcome.run_url).replicate(0)
    before = _record(outcome)
    # killed after the detecting epoch, before the stage's marker and anything after it
    for stage in ("dense", "grid"):
        rep.store.delete(stage, "_COMPLETE")
    again = run_prune_job(settings, spark=spark)
    after = _record(again)
    assert after["stopped_at_epoch"] == before["stopped_at_epoch"]
    assert after["detections"] == before["detections"]
    assert after["points"] == before["points"]


def test_compare_trains_early_bird_tickets_beside_the_full_ones(spark, sample_dataset,
                                                                 tmp_path_factory, tracked):
    settings = _settings(sample_dataset, str(tmp_path_factory.mktemp("eb-compare")),
                         "early_bird.compare=true", "early_bird.detector=distance",
                         "grid.controls=[random_mask]")
    outcome = run_prune_job(settings, spark=spark)
    cells = {r["cell"]: r for r in outcome.rows}
    assert {"L1-k0-none", "L1-k0-random_mask", "L1-k0-early_bird",
            "L1-k0-early_bird_random_mask"} <= set(cells)
    assert all(r["status"] == "ok" for r in outcome.rows)
    epoch = _record(outcome)["detections"]["distance"]["epoch"]
    name = outcome.run_url.rstrip("/").rsplit("/", 1)[1]
    twin = RunLayout(f"{outcome.run_url}/early-bird/{name}").replicate(0)
    masks = masks_from_bytes(twin.store.read_bytes(*twin.masks(1, 0)))
    np.testing.assert_array_equal(flat(masks), flat(_tracked(outcome, epoch)))
    report = ArtifactStore(outcome.run_url).read_text("report.md")
    assert "full-training ticket − early-bird ticket" in report
    assert "would save" in report


def test_compare_and_stop_exclude_each_other():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="early_bird.compare: needs the fully trained"):
        load_config(PruneJobSettings, overrides=["early_bird.compare=true",
                                                 "early_bird.stop=true"])
