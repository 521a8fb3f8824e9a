"""Prediction ensembles and merged tickets of a finished run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.ensembles.job import run_ensemble_job
from pipeline.ensembles.merge import density
from pipeline.ensembles.settings import EnsembleJobSettings
from pipeline.experiment.cells import Cell
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_layout import RunLayout
from pipeline.store import ArtifactStore
from pipeline.tickets import masks_from_bytes
from tests.support.job_settings import tiny_settings


def test_an_ensemble_of_identical_members_equals_the_member(spark, sample_dataset):
    from pipeline.ensembles.predictions import evaluate_ensemble
    from pipeline.models import ModelSpec
    from pipeline.train.evaluation import evaluate_distributed

    spec = ModelSpec("conv4", 32, 10, seed=3)
    weights = spec.build().get_weights()
    val = ArtifactStore(sample_dataset).url("val")
    alone = evaluate_distributed(spark.sparkContext, spec, weights, val, 2, 64)
    members, ensemble = evaluate_ensemble(spark.sparkContext, spec, [weights] * 3, val, 2, 64)
    assert ensemble.images == alone.images == 100
    for result in (*members, ensemble):
        assert (result.top1, result.top5) == (alone.top1, alone.top5)
        # (p + p + p) / 3 is p up to the last bit of a float64
        assert result.loss == pytest.approx(alone.loss, rel=1e-12)


@pytest.fixture(scope="module")
def source_run(spark, sample_dataset, tmp_path_factory):
    settings = tiny_settings(sample_dataset, str(tmp_path_factory.mktemp("runs")),
                             "run.replicates=2", "prune.levels=1", "grid.controls=[]")
    return run_prune_job(settings, spark=spark)


@pytest.fixture(scope="module")
def ensembles(spark, source_run):
    settings = load_config(EnsembleJobSettings, overrides=[
        "ensemble.merge_pairs=[L1-k1-none@0+L1-k1-none@1]"])
    return run_ensemble_job(source_run.run_url, settings.ensemble, spark=spark)


def test_every_ensemble_and_merge_is_a_row(ensembles):
    table = pd.read_csv(ArtifactStore(ensembles.output_url).path("results.csv"))
    assert (table["status"] == "ok").all(), table[["cell", "error"]]
    kinds = table["kind"].value_counts().to_dict()
    # across replicates: one per rewind point; across rewinds: one per replicate
    assert kinds["prediction_ensemble"] == 4
    assert kinds["merged_union"] == kinds["merged_intersection"] == 1
    assert kinds["dense"] == 2 and kinds["member"] == 4
    ens = table[table["kind"] == "prediction_ensemble"]
    assert ens["top1"].between(0, 1).all() and (ens["epochs"] == 0).all()
    report = ArtifactStore(ensembles.output_url).read_text("report.md")
    assert "## Prediction ensembles" in report and "## Merged tickets" in report


def test_merged_tickets_train_under_the_merged_masks(source_run, ensembles):
    run = RunLayout(source_run.run_url)
    members = [masks_from_bytes(run.replicate(r).cell_dir(Cell(1, 1)).read_bytes(
        RunLayout.CELL_MASKS)) for r in (0, 1)]
    table = pd.read_csv(ArtifactStore(ensembles.output_url).path("results.csv"))
    out = ArtifactStore(ensembles.output_url)
    for how, op in (("union", np.logical_or), ("intersection", np.logical_and)):
        [merged_dir] = [d for d in out.listdir() if d.startswith(f"merged-{how}-")]
        cell = RunLayout(out.url(merged_dir)).replicate(0).cell_dir(Cell(1, 1))
        trained = masks_from_bytes(cell.read_bytes(RunLayout.CELL_MASKS))
        for name in trained:
            np.testing.assert_array_equal(trained[name], op(members[0][name], members[1][name]))
        row = table[table["kind"] == f"merged_{how}"].iloc[0]
        assert row["weights_from"] == "L1-k1-none@0"
        kept = density(trained)
        if how == "union":
            assert kept >= max(density(m) for m in members)
        else:
            assert kept <= min(density(m) for m in members)


def test_rerun_reuses_the_merged_tickets(spark, source_run, ensembles):
    settings = load_config(EnsembleJobSettings, overrides=[
        "ensemble.merge_pairs=[L1-k1-none@0+L1-k1-none@1]"])
    again = run_ensemble_job(source_run.run_url, settings.ensemble, spark=spark)
    merged = [r for r in again.rows if str(r.get("kind")).startswith("merged_")]
    before = {r["cell"]: r["train_seconds"] for r in ensembles.rows
              if str(r.get("kind")).startswith("merged_")}
    assert {r["cell"]: r["train_seconds"] for r in merged} == before
