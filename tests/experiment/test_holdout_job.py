"""The main job with data.holdout_per_class: every model trains on train less the holdout,
is evaluated on the holdout and on val every epoch, and early-stops on the holdout."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.data.dataset import IngestedDataset
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_layout import RunLayout
from pipeline.store import ArtifactStore
from pipeline.train.checkpoints import checkpoint_meta
from tests.support.job_settings import tiny_settings


def test_holdout_chooses_early_stops_and_val_reports(spark, sample_dataset, tmp_path):
    settings = tiny_settings(
        sample_dataset, str(tmp_path), "model.name=lenet_300_100", "train.epochs=3",
        "prune.levels=1", "rewind.epochs=[0]", "grid.controls=[reinit]",
        "data.holdout_per_class=5",
    )
    outcome = run_prune_job(settings, spark=spark)
    assert [r["cell"] for r in outcome.rows] == ["dense", "L0-k0-none", "L1-k0-none",
                                                 "L1-k0-reinit"]
    assert all(r["status"] == "ok" for r in outcome.rows), outcome.rows
    run = ArtifactStore(outcome.run_url)
    splits = IngestedDataset(RunLayout(outcome.run_url).splits_url())
    assert splits.rows("train") == 300 - 10 * 5 and splits.rows("holdout") == 10 * 5

    # every model trained on the 250 images left: 2 workers x batch 32 -> 3 steps of 64
    # an epoch (300 images would give 4)
    dense = checkpoint_meta(RunLayout(outcome.run_url).replicate(0).dense_dir(), "epoch-001")
    assert dense["last_step"] == 3
    rep = RunLayout(outcome.run_url).replicate(0)
    for history in rep.store.read_json(*rep.histories()):
        assert [h["last_step"] for h in history] == [3, 6, 9]

    table = pd.read_parquet(run.path("results.parquet"))
    assert (table["early_stop_split"] == "holdout").all()
    assert table["holdout_top1"].between(0, 1).all() and (table["holdout_loss"] > 0).all()
    assert table["top1"].notna().all()  # val still reports

    history = pd.read_parquet(run.path("history.parquet"))
    assert {"holdout_loss", "holdout_top1", "val_loss"} <= set(history.columns)
    assert len(history) == 4 * 3 and history["holdout_loss"].notna().all()
    for row in table.itertuples():
        mine = history[history["cell"] == row.cell].sort_values("epoch")
        chosen = int(mine["epoch"].iloc[int(np.argmin(mine["holdout_loss"].to_numpy()))])
        assert row.best_epoch == chosen, row.cell
        last = mine.iloc[-1]
        assert np.isclose(row.holdout_loss, last["holdout_loss"])
        assert np.isclose(row.val_loss, last["val_loss"])
    assert "lowest holdout loss" in run.read_text("report.md")
