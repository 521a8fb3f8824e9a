"""A run directory mirrored into MLflow: one parent run, a nested run per result row.

The driver logs what the job already holds (the result rows, the per-epoch history, the files
of the report), so executors never talk to the tracking server. The parent run is found again
by the run directory's URL, so a resumed or repeated job adds to the same MLflow run; a nested
run is keyed by replicate and cell and replaced only when its row or history changed (a cell
retrained because its inputs changed), so nothing is logged twice.

Tracking is a copy, never the record: the first failing call logs one warning line and turns
tracking off for the rest of the job, which goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import flatten, to_dict
from pipeline.store import ArtifactStore

log = logging.getLogger(__name__)

# Per-epoch series of the history table, logged with step = epoch.
EPOCH_METRICS = ("learning_rate", "loss", "val_loss", "top1", "top5", "holdout_loss",
                 "holdout_top1")
# Numeric columns of a result row, logged once as ``result.<column>`` (results.csv's names).
RESULT_METRICS = ("top1", "top5", "val_loss", "best_epoch", "epochs", "train_seconds",
                  "weights_remaining_prunable", "weights_remaining_overall", "holdout_top1",
                  "holdout_loss", "flops_remaining", "dense_flops", "layers_emptied",
                  "depthwise_channels_emptied")
ROW_TAGS = ("cell", "level", "rewind_epoch", "control", "replicate", "seed", "control_seed",
            "data_order_seed", "status", "early_stop_split")
# The run directory's files copied to the parent run (those that exist).
ARTIFACTS = ("report.md", "results.csv", "results.parquet", "summary.csv", "summary.parquet",
             "history.parquet", "timings.json", "settings.yaml")
RUN_DIR_TAG = "lottery.run_dir"
KEY_TAG = "lottery.key"
DIGEST_TAG = "lottery.digest"
PARENT_TAG = "mlflow.parentRunId"
KIND_TAG = "mlflow.experimentKind"  # the UI opens a model-training experiment on its runs
BATCH = 900  # MLflow accepts at most 1000 metrics (and 100 params or tags) per log_batch
MAX_PARAM = 6000  # the longest param value MLflow stores


class NoTracking:
    """What the job calls when ``tracking.mlflow_uri`` is empty: nothing happens."""

    @property
    def enabled(self) -> bool:
        """Whether logging still happens (so callers can skip gathering what it needs)."""
        return False

    def log_rows(self, rows: Iterable[dict[str, Any]], history: pd.DataFrame) -> None:
        """Nothing to log."""

    def finish(self, store: ArtifactStore, failed: bool) -> None:
        """Nothing to close."""


class MlflowRun(NoTracking):
    """The MLflow parent run of one run directory; every method is safe to call after a
    failure (it then does nothing)."""

    def __init__(self, uri: str, experiment: str, run_url: str, settings: Any) -> None:
        self.uri = uri
        self.off = False
        self.parent_id: str | None = None
        self.children: dict[str, tuple[str, str]] = {}  # key -> (run id, digest)
        self._guard(self._start, experiment, run_url, settings)

    @property
    def enabled(self) -> bool:
        return not self.off

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        if self.off:
            return
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - any failure of the copy must spare the job
            self.off = True
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            log.warning("MLflow tracking at %s failed and is off for the rest of this job "
                        "(the run directory is complete): %s: %s",
                        self.uri, type(exc).__name__, first)

    def _start(self, experiment: str, run_url: str, settings: Any) -> None:
        # A server that is down must not hold the job for minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment(experiment)
        quoted = run_url.replace("'", "\\'")
        found = self.client.search_runs(
            [self.experiment_id], f"tags.`{RUN_DIR_TAG}` = '{quoted}'", max_results=1)
        if found:
            self.parent_id = found[0].info.run_id
            self.client.update_run(self.parent_id, status="RUNNING")
            log.info("MLflow: run %s resumed in %s", self.parent_id, self.uri)
        else:
            name = run_url.rstrip("/").rsplit("/", 1)[-1]
            self.parent_id = self.client.create_run(
                self.experiment_id, run_name=name, tags={RUN_DIR_TAG: run_url}).info.run_id
            log.info("MLflow: run %s created in %s", self.parent_id, self.uri)
        self._log_settings(settings)
        for child in self.client.search_runs(
                [self.experiment_id], f"tags.`{PARENT_TAG}` = '{self.parent_id}'",
                max_results=50000):
            tags = child.data.tags
            if KEY_TAG in tags:
                self.children[tags[KEY_TAG]] = (child.info.run_id, tags.get(DIGEST_TAG, ""))

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=_artifact_root(self.uri),
                                                 tags={KIND_TAG: "custom_model_development"})
        except Exception:  # another driver created it in the meantime
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _log_settings(self, settings: Any) -> None:
        """What the job computes as params (fixed for a run directory: its hash covers
        them); where and how it runs as tags, which a resumed job may change."""
        from mlflow.entities import Param, RunTag

        values = flatten(to_dict(settings))
        execution = set(getattr(settings, "execution_only", ()))
        logged = self.client.get_run(self.parent_id).data.params
        params = [Param(k, _text(v)[:MAX_PARAM]) for k, v in values.items()
                  if k not in execution and k not in logged]
        tags = [RunTag(f"setting.{k}", _text(v)) for k, v in values.items() if k in execution]
        for start in range(0, max(len(params), len(tags)), 100):
            self.client.log_batch(self.parent_id, params=params[start:start + 100],
                                  tags=tags[start:start + 100])

    def log_rows(self, rows: Iterable[dict[str, Any]], history: pd.DataFrame) -> None:
        """A nested run per result row (the dense stages and the cells) with its tags, its
        per-epoch metrics from ``history`` and its results as ``result.*`` metrics."""
        self._guard(self._log_rows, list(rows), history)

    def _log_rows(self, rows: list[dict[str, Any]], history: pd.DataFrame) -> None:
        by_model = {key: frame for key, frame in history.groupby(["replicate", "cell"])}
        for row in rows:
            replicate, cell = int(row.get("replicate", 0)), str(row["cell"])
            epochs = by_model.get((replicate, cell))
            key = f"replicate-{replicate}/{cell}"
            digest = _digest(row, epochs)
            known = self.children.get(key)
            if known is not None and known[1] == digest:
                continue
            if known is not None:  # retrained since it was logged: the old numbers are gone
                self.client.delete_run(known[0])
            self.children[key] = (self._log_child(key, digest, row, epochs), digest)

    def _log_child(self, key: str, digest: str, row: dict[str, Any],
                   epochs: pd.DataFrame | None) -> str:
        from mlflow.entities import Metric

        tags = {PARENT_TAG: self.parent_id, KEY_TAG: key, DIGEST_TAG: digest,
                "stage": "dense" if row["cell"] == "dense" else "cell"}
        tags.update({k: _text(row[k]) for k in ROW_TAGS if row.get(k) is not None})
        if row.get("error"):
            tags["error"] = str(row["error"])[:5000]
        name = f"r{row.get('replicate', 0)} {row['cell']}"
        run_id = self.client.create_run(self.experiment_id, run_name=name,
                                        tags=tags).info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(f"result.{k}", float(row[k]), now, 0) for k in RESULT_METRICS
                   if _finite(row.get(k))]
        for record in (epochs.to_dict("records") if epochs is not None else []):
            metrics += [Metric(k, float(record[k]), now, int(record["epoch"]))
                        for k in EPOCH_METRICS if _finite(record.get(k))]
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(run_id, metrics=metrics[start:start + BATCH])
        self.client.set_terminated(run_id, "FINISHED" if row.get("status") == "ok"
                                   else "FAILED")
        return run_id

    def finish(self, store: ArtifactStore, failed: bool) -> None:
        """Copy the report, tables and figures to the parent run and close it."""
        self._guard(self._finish, store, failed)

    def _finish(self, store: ArtifactStore, failed: bool) -> None:
        with tempfile.TemporaryDirectory(prefix="lottery-mlflow-") as tmp:
            names = [n for n in ARTIFACTS if store.exists(n)]
            if store.is_dir("figures"):
                names += [f"figures/{n}" for n in sorted(store.listdir("figures"))
                          if n.endswith(".png")]
            for name in names:
                path = Path(tmp, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(store.read_bytes(*name.split("/")))
            if names:
                self.client.log_artifacts(self.parent_id, tmp)
        self.client.set_terminated(self.parent_id, "FAILED" if failed else "FINISHED")
        log.info("MLflow: run %s %s, %d nested run(s)", self.parent_id,
                 "failed" if failed else "finished", len(self.children))


def start_tracking(uri: str, experiment: str, run_url: str, settings: Any) -> NoTracking:
    """The job's tracker: :class:`MlflowRun` when ``uri`` is set, else :class:`NoTracking`."""
    if not uri:
        return NoTracking()
    return MlflowRun(uri, experiment, run_url, settings)


def _artifact_root(uri: str) -> str | None:
    """Beside a sqlite store's file (MLflow would use ./mlruns under the working directory);
    file stores and servers choose their own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _finite(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def _digest(row: dict[str, Any], epochs: pd.DataFrame | None) -> str:
    blob = json.dumps([row, epochs.to_dict("records") if epochs is not None else []],
                      sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
