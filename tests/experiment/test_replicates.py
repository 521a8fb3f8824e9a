"""Replicates: independent experiments in one run directory, and runs merged into one study."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.experiment.aggregate import AggregateError, aggregate_runs
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_dir import RunDirectory
from pipeline.seeding import replicate_seed
from pipeline.store import ArtifactStore, local_path
from tests.support.job_settings import tiny_settings

REPO = Path(__file__).resolve().parents[2]
SMALL = ("model.name=lenet_300_100", "prune.levels=1", "rewind.epochs=[1]",
         "grid.controls=[reinit]")
CELLS = ["dense", "L0-k1-none", "L1-k1-none", "L1-k1-reinit"]


def _mtimes(root: Path, pattern: str) -> dict[Path, int]:
    return {p.relative_to(root): p.stat().st_mtime_ns for p in sorted(root.glob(pattern))}


@pytest.fixture(scope="module")
def two_replicates(spark, sample_dataset, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("replicates"))
    settings = tiny_settings(sample_dataset, output, *SMALL, "run.replicates=2")
    return settings, run_prune_job(settings, spark=spark)


def test_every_replicate_is_its_own_experiment(two_replicates):
    settings, outcome = two_replicates
    table = pd.read_parquet(local_path(ArtifactStore(outcome.run_url).path("results.parquet")))
    assert (table["status"] == "ok").all(), table[["cell", "error"]]
    assert sorted(zip(table["replicate"], table["cell"], strict=True)) == sorted(
        (r, c) for r in (0, 1) for c in CELLS)
    seeds = {r: set(table.loc[table.replicate == r, "seed"]) for r in (0, 1)}
    assert seeds == {r: {replicate_seed(settings.run.seed, r)} for r in (0, 1)}
    controls = table[table.control == "reinit"]
    assert controls["control_seed"].notna().all()
    assert controls["control_seed"].nunique() == 2  # each replicate draws its own control
    assert table.loc[table.control == "none", "control_seed"].isna().all()
    # independent initializations: the two dense runs end differently
    dense = table[table.cell == "dense"].sort_values("replicate")
    assert dense["val_loss"].iloc[0] != dense["val_loss"].iloc[1]


def test_tables_read_back_with_their_types(two_replicates, spark):
    _, outcome = two_replicates
    store = ArtifactStore(outcome.run_url)
    history = pd.read_parquet(local_path(store.path("history.parquet")))
    assert history["replicate"].dtype == "int64" and history["epoch"].dtype == "int64"
    dense = history[(history.cell == "dense") & (history.replicate == 1)]
    assert dense["epoch"].tolist() == [1, 2]
    ticket = history[(history.cell == "L1-k1-none") & (history.replicate == 0)]
    assert ticket["epoch"].tolist() == [2]  # rewound to 1: epoch 2 only
    assert history[["learning_rate", "loss", "val_loss", "top1"]].notna().all().all()
    summary = pd.read_parquet(local_path(store.path("summary.parquet")))
    assert len(summary) >= 1
    for name in ("results.parquet", "history.parquet", "summary.parquet"):
        frame = spark.read.parquet(store.path(name))
        assert frame.count() == len(pd.read_parquet(local_path(store.path(name)))), name
    types = dict(spark.read.parquet(store.path("results.parquet")).dtypes)
    assert types["replicate"] == "bigint" and types["top1"] == "double"


def test_more_replicates_reuse_the_ones_trained(two_replicates, spark, sample_dataset):
    settings, outcome = two_replicates
    root = Path(local_path(outcome.run_url))
    before = _mtimes(root, "replicate-*/grid/*/*/*/result.json")
    assert len(before) == 2 * (len(CELLS) - 1)
    more = tiny_settings(sample_dataset, settings.run.output, *SMALL, "run.replicates=3")
    assert RunDirectory(more).url == outcome.run_url
    again = run_prune_job(more, spark=spark)
    after = _mtimes(root, "replicate-*/grid/*/*/*/result.json")
    assert {p: after[p] for p in before} == before  # nothing of replicates 0 and 1 retrained
    assert len(after) == 3 * (len(CELLS) - 1)
    assert sorted({r["replicate"] for r in again.rows}) == [0, 1, 2]


def test_runs_with_other_seeds_merge_into_one_study(two_replicates, spark, sample_dataset,
                                                    tmp_path):
    settings, outcome = two_replicates
    other = tiny_settings(sample_dataset, str(tmp_path / "other"), *SMALL, "run.seed=7")
    second = run_prune_job(other, spark=spark)
    study = tmp_path / "study"
    aggregate_runs([outcome.run_url, second.run_url], str(study))
    first = pd.read_parquet(local_path(ArtifactStore(outcome.run_url).path("results.parquet")))
    count = first["replicate"].nunique()
    table = pd.read_parquet(study / "results.parquet")
    assert sorted(table["replicate"].unique()) == list(range(count + 1))  # renumbered
    assert len(table) == len(first) + len(CELLS)
    assert (study / "report.md").is_file() and (study / "summary.parquet").is_file()


def test_runs_with_other_settings_are_refused(sample_dataset, tmp_path):
    runs = []
    for name, fraction in (("a", 0.5), ("b", 0.3)):
        settings = tiny_settings(sample_dataset, str(tmp_path / name), *SMALL,
                                 f"prune.fraction_per_level={fraction}")
        run = RunDirectory(settings)
        run.write_settings()
        runs.append(run.url)
    with pytest.raises(AggregateError, match="prune.fraction_per_level: 0.5 vs 0.3"):
        aggregate_runs(runs, str(tmp_path / "study"))
    proc = subprocess.run([sys.executable, str(REPO / "jobs" / "aggregate_runs.py"), *runs,
                           "--output", str(tmp_path / "study")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("aggregate_runs: error: ")
    assert "prune.fraction_per_level" in proc.stderr
