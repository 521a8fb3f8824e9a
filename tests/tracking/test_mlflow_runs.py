"""MLflow tracking against a real sqlite store, read back with ``MlflowClient.search_runs``."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_dir import RunDirectory
from pipeline.store import ArtifactStore
from pipeline.tracking.mlflow_runs import KEY_TAG, RUN_DIR_TAG, MlflowRun
from tests.support.job_settings import tiny_settings

EXPERIMENT = "tests"


def _lenet(data_url: str, output: str, uri: str):
    return tiny_settings(
        data_url, output, "model.name=lenet_300_100", "prune.levels=1", "rewind.epochs=[1]",
        "grid.controls=[reinit]", f"tracking.mlflow_uri={uri}",
        f"tracking.experiment={EXPERIMENT}",
    )


def _runs(client: MlflowClient, filter_string: str = "") -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([experiment.experiment_id], filter_string, max_results=1000)


@pytest.fixture(scope="module")
def tracked(spark, sample_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    settings = _lenet(sample_dataset, str(root / "runs"), uri)
    outcome = run_prune_job(settings, spark=spark)
    return settings, outcome, MlflowClient(tracking_uri=uri)


def test_one_parent_run_with_the_settings_and_the_report(tracked):
    settings, outcome, client = tracked
    (parent,) = _runs(client, f"tags.`{RUN_DIR_TAG}` = '{outcome.run_url}'")
    assert parent.info.status == "FINISHED"
    params = parent.data.params
    assert params["model.name"] == "lenet_300_100"
    assert params["prune.levels"] == "1" and params["rewind.epochs"] == "[1]"
    # execution-only settings are tags: a resumed job may change them
    assert "run.master" not in params
    assert parent.data.tags["setting.tracking.experiment"] == EXPERIMENT
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "results.csv", "history.parquet", "figures"} <= artifacts
    figures = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/accuracy_vs_weights.png" in figures
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # beside the sqlite file, not in the working directory
    db = client.tracking_uri[len("sqlite:///"):]
    assert parent.info.artifact_uri.startswith(Path(db).parent.joinpath("mlartifacts").as_uri())


def test_a_nested_run_per_row_with_its_tags_and_epochs(tracked):
    _, outcome, client = tracked
    (parent,) = _runs(client, f"tags.`{RUN_DIR_TAG}` = '{outcome.run_url}'")
    children = _runs(client, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_cell = {c.data.tags["cell"]: c for c in children}
    assert sorted(by_cell) == sorted(r["cell"] for r in outcome.rows)
    store = ArtifactStore(outcome.run_url)
    results = pd.read_csv(store.path("results.csv"))
    history = pd.read_parquet(store.path("history.parquet"))
    for row in results.to_dict("records"):
        child = by_cell[row["cell"]]
        tags = child.data.tags
        assert child.info.status == "FINISHED"
        assert tags["level"] == str(row["level"]) and tags["control"] == row["control"]
        assert tags["replicate"] == str(row["replicate"])
        assert tags["stage"] == ("dense" if row["cell"] == "dense" else "cell")
        if row["cell"] != "dense":
            assert tags["rewind_epoch"] == str(int(row["rewind_epoch"]))
        assert child.data.metrics["result.top1"] == pytest.approx(row["top1"], abs=1e-12)
        epochs = history[history.cell == row["cell"]].sort_values("epoch")
        logged = sorted(client.get_metric_history(child.info.run_id, "top1"),
                        key=lambda m: m.step)
        assert [m.step for m in logged] == epochs.epoch.tolist()
        assert [m.value for m in logged] == pytest.approx(epochs.top1.tolist(), abs=1e-12)


def test_a_repeated_job_adds_nothing_twice(tracked, spark):
    settings, outcome, client = tracked
    before = {r.info.run_id for r in _runs(client)}
    again = run_prune_job(settings, spark=spark)
    assert again.run_url == outcome.run_url
    after = _runs(client)
    assert {r.info.run_id for r in after} == before
    assert all(r.info.status == "FINISHED" for r in after)


def test_a_changed_row_replaces_its_nested_run(tracked):
    settings, outcome, client = tracked
    tracker = MlflowRun(client.tracking_uri, EXPERIMENT, outcome.run_url, settings)
    row = next(r for r in outcome.rows if r["cell"] == "L1-k1-reinit")
    old = tracker.children["replicate-0/L1-k1-reinit"][0]
    tracker.log_rows([{**row, "top1": 0.5}], pd.DataFrame(columns=["replicate", "cell"]))
    assert not tracker.off
    live = [r for r in _runs(client, f"tags.`{KEY_TAG}` = 'replicate-0/L1-k1-reinit'")]
    assert [r.data.metrics["result.top1"] for r in live] == [0.5]
    assert client.get_run(old).info.lifecycle_stage == "deleted"
    tracker.finish(ArtifactStore(outcome.run_url), failed=False)


def test_a_dead_server_costs_one_warning_and_not_the_job(tracked, spark, caplog,
                                                         monkeypatch):
    settings, outcome, _ = tracked
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dead = _lenet(settings.data.url, settings.run.output, f"http://127.0.0.1:{port}")
    assert RunDirectory(dead).url == outcome.run_url  # tracking does not move the run
    with caplog.at_level(logging.WARNING, logger="pipeline.tracking"):
        again = run_prune_job(dead, spark=spark)
    warnings = [r for r in caplog.records if r.name.startswith("pipeline.tracking")]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "failed and is off" in warnings[0].getMessage()
    assert [r["top1"] for r in again.rows] == [r["top1"] for r in outcome.rows]


def test_an_unknown_uri_scheme_is_refused_by_name(sample_dataset, tmp_path):
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=r"^tracking\.mlflow_uri: 'ftp://host' is not a"):
        _lenet(sample_dataset, str(tmp_path), "ftp://host")
