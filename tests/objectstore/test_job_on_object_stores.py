"""The main job reads its dataset from s3:// and gs:// and writes its run directory there,
against real S3 and GCS API servers on 127.0.0.1, found through the standard variables.

The job runs as ``python jobs/prune_imagenet.py`` in local mode, in a process of its own:
its Spark executors inherit the endpoint variables as a cluster's would from its nodes.
The dataset is ingested locally and uploaded (Spark's own s3a:// and gs:// connectors are
jars that cannot be fetched offline, and ingest writes through Spark).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline.store import ArtifactStore
from tests.objectstore.conftest import store_env
from tests.support.cluster_jobs import REPO, expected_cells, prune_args

JOB = REPO / "jobs" / "prune_imagenet.py"
TIMEOUT_S = 900


def _upload(local_url: str, bucket: str) -> str:
    import fsspec

    protocol = "s3" if bucket.startswith("s3://") else "gcs"
    local = local_url.removeprefix("file://")
    target = f"{bucket.split('://', 1)[1]}/dataset"
    fsspec.filesystem(protocol).put(local, target, recursive=True)
    return f"{bucket}/dataset"


def _job(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    full_env = {**os.environ, **env, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, str(JOB), *args], env=full_env, cwd=log.parent,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _finish(proc: subprocess.Popen, log: Path) -> str:
    try:
        proc.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the job ran past {TIMEOUT_S}s:\n{log.read_text()[-4000:]}")
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    return text


def _run_dir(output: str) -> ArtifactStore:
    runs = ArtifactStore(output)
    names = runs.listdir()
    assert len(names) == 1, names
    return runs.child(names[0])


def _assert_complete(run: ArtifactStore, cells: set[str]) -> pd.DataFrame:
    import io

    table = pd.read_csv(io.BytesIO(run.read_bytes("results.csv")))
    assert set(table["cell"]) == {"dense", *cells}
    assert (table["status"] == "ok").all(), table.loc[table.status != "ok", ["cell", "error"]]
    assert run.exists("report.md") and run.is_complete("replicate-0", "grid")
    return table


@pytest.fixture
def dataset(bucket, sample_dataset) -> str:
    return _upload(sample_dataset, bucket)


def test_the_main_job_runs_on_the_object_store(bucket, dataset, s3_env, gcs_env, tmp_path):
    output = f"{bucket}/runs"
    env = store_env(bucket, s3_env, gcs_env)
    log = tmp_path / "job.log"
    text = _finish(_job(prune_args(dataset, output), env, log), log)
    run = _run_dir(output)
    assert f"run directory: {run.root}" in text, text[-3000:]
    _assert_complete(run, expected_cells(dataset, output))


@pytest.mark.parametrize("bucket", ["s3"], indirect=True)
def test_a_killed_run_resumes_on_the_object_store(bucket, dataset, s3_env, gcs_env, tmp_path):
    output = f"{bucket}/runs"
    env = store_env(bucket, s3_env, gcs_env)
    cells = expected_cells(dataset, output)
    first = _job(prune_args(dataset, output), env, tmp_path / "first.log")
    deadline = time.monotonic() + TIMEOUT_S
    done: list[str] = []
    while not done and time.monotonic() < deadline and first.poll() is None:
        time.sleep(1.0)
        runs = ArtifactStore(output)
        if runs.exists():
            for name in runs.listdir():
                grid = runs.child(name, "replicate-0", "grid")
                done = _results(grid) if grid.exists() else []
    assert done and first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its local executors, mid-grid
    first.wait(60)
    run = _run_dir(output)
    before = {path: run.read_bytes(*path.split("/")) for path in _all_results(run)}
    dense = run.read_bytes("replicate-0", "dense", "_COMPLETE")

    second = _job(prune_args(dataset, output), env, tmp_path / "second.log")
    _finish(second, tmp_path / "second.log")
    _assert_complete(run, cells)
    assert run.read_bytes("replicate-0", "dense", "_COMPLETE") == dense  # not retrained
    for path, content in before.items():
        assert run.read_bytes(*path.split("/")) == content, f"{path} was trained again"


def _results(grid: ArtifactStore) -> list[str]:
    import fsspec

    fs = fsspec.filesystem("s3", use_listings_cache=False)
    return fs.glob(grid.root.removeprefix("s3://") + "/L*/k*/*/result.json")


def _all_results(run: ArtifactStore) -> list[str]:
    prefix = run.root.removeprefix("s3://") + "/"
    return [p.removeprefix(prefix) for p in _results(run.child("replicate-0", "grid"))]


def test_a_second_driver_on_a_leased_run_exits_1(bucket, dataset, s3_env, gcs_env, tmp_path):
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.experiment.run_lease import LEASE, RunLease
    from tests.support.cluster_jobs import prune_settings

    output = f"{bucket}/runs"
    run = RunDirectory(prune_settings(dataset, output))
    with RunLease(run.store, 600, app_id="local-first"):
        log = tmp_path / "second.log"
        second = _job(prune_args(dataset, output), store_env(bucket, s3_env, gcs_env), log)
        second.wait(TIMEOUT_S)
        text = log.read_text(errors="replace")
        assert second.returncode == 1, text[-3000:]
        lines = [ln for ln in text.splitlines() if ln.startswith("prune_imagenet: error:")]
        assert len(lines) == 1 and f"run directory {run.url} is in use by process" in lines[0]
        assert "Spark application local-first" in lines[0]
        assert run.store.listdir() == [LEASE]  # nothing else was written
