"""Faults on a real standalone cluster: a lost worker, a killed driver, a killed ingest, a
corrupt checkpoint; and GPU addresses handed to tasks by the cluster's scheduler."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cluster import StandaloneCluster
from pipeline.experiment.cells import Cell
from pipeline.experiment.run_layout import RunLayout
from pipeline.store import ArtifactStore
from pipeline.tickets import load_ticket
from pipeline.train.checkpoints import load_checkpoint
from tests.support.cluster_jobs import (
    CLASSES,
    FAKE_GPUS,
    PYTHON,
    REPO,
    TRAIN_PER_CLASS,
    VAL_PER_CLASS,
    ClusterIngest,
    assert_complete_run,
    assert_ok,
    cell_results,
    describe,
    expected_cells,
    job_log,
    poll_until,
    prune_args,
    prune_run_dir,
    scratch_cwd,
    spark_submit,
    start_submit,
)

pytestmark = pytest.mark.cluster

TRAIN_ROWS, VAL_ROWS = TRAIN_PER_CLASS * CLASSES, VAL_PER_CLASS * CLASSES
JOB_TIMEOUT_S = 600.0


@pytest.fixture(scope="module")
def fault_data(standalone_cluster, cluster_ingest: ClusterIngest):  # noqa: F811, ANN201
    """(source directory, ingested dataset) of the session's cluster ingest."""
    assert_ok(cluster_ingest.proc, standalone_cluster)
    return cluster_ingest.source, str(cluster_ingest.dataset)


def grid_started(run_dir: Path) -> bool:
    """The rewind chains' level-1 masks are written just before the first wave starts."""
    return len(list(run_dir.glob("replicate-0/masks/L1-k*.npz"))) == 2


# -- a worker dies while grid cells run ------------------------------------------------------
def test_lost_worker_during_grid(fault_data, tmp_path: Path):
    _, data = fault_data
    output = tmp_path / "runs"
    run_dir, cells = prune_run_dir(data, output), expected_cells(data, output)
    # Its own cluster: the module's keeps both workers for the other tests.
    with StandaloneCluster(2, base_dir=tmp_path / "cluster", python=str(PYTHON)) as cluster:
        job = start_submit(cluster, "prune_imagenet.py", prune_args(data, output),
                           cwd=scratch_cwd(tmp_path), log=tmp_path / "prune.log")
        try:
            poll_until(lambda: grid_started(run_dir), JOB_TIMEOUT_S, "the grid to start",
                       interval=0.1, alive=job)
            finished_before = len(cell_results(run_dir))
            cluster.kill_worker(1)
            rc = job.wait(JOB_TIMEOUT_S)
        finally:
            job.kill()
        log = job.output()
        assert rc == 0, f"exit status {rc}\n{job.tail(80)}\n{cluster.log_tail(20)}"
        alive = {w["port"] for w in cluster.alive_workers()}
        assert alive == {cluster.workers[0].port}, alive
    assert finished_before < len(cells), "the grid finished before the worker was killed"
    assert "Lost executor" in log, job.tail(80)
    assert_complete_run(run_dir, cells)


# -- the driver dies during the grid; the same command resumes -------------------------------
@pytest.fixture(scope="module")
def resumed_run(standalone_cluster, fault_data, tmp_path_factory):  # noqa: F811, ANN201
    """A run whose driver was SIGKILLed mid-grid and which was then rerun."""
    _, data = fault_data
    root = tmp_path_factory.mktemp("driver_kill")
    output = root / "runs"
    run_dir, cells = prune_run_dir(data, output), expected_cells(data, output)
    job = start_submit(standalone_cluster, "prune_imagenet.py", prune_args(data, output),
                       cwd=scratch_cwd(root), log=root / "killed.log")
    try:
        poll_until(lambda: cell_results(run_dir), JOB_TIMEOUT_S, "the first grid cell",
                   interval=0.1, alive=job)
    finally:
        job.kill()
    # The master removes the application, and its workers its executors, once the driver is
    # gone; nothing of the killed run may still be writing when the rerun starts.
    standalone_cluster.wait_until_idle()
    before: dict[str, dict[str, Any]] = {}
    for result in cell_results(run_dir):
        row = json.loads(result.read_text())
        before[row["cell"]] = {"path": result, "mtime_ns": result.stat().st_mtime_ns,
                               "train_seconds": row["train_seconds"]}
    rerun = spark_submit(standalone_cluster, "prune_imagenet.py", prune_args(data, output),
                         cwd=scratch_cwd(root))
    return {"data": data, "output": output, "run_dir": run_dir, "cells": cells,
            "before": before, "rerun": rerun, "killed_log": job.output()}


def test_killed_driver_resumes_without_retraining(standalone_cluster, resumed_run):  # noqa: F811
    before, cells = resumed_run["before"], resumed_run["cells"]
    assert 1 <= len(before) < len(cells), (
        f"{len(before)} of {len(cells)} cells had finished when the driver was killed")
    assert_ok(resumed_run["rerun"], standalone_cluster)
    for cell, seen in before.items():
        row = json.loads(seen["path"].read_text())
        assert seen["path"].stat().st_mtime_ns == seen["mtime_ns"], f"{cell} was rewritten"
        assert row["train_seconds"] == seen["train_seconds"], f"{cell} was retrained"
    log = job_log(resumed_run["rerun"])
    assert "dense: finished earlier, skipped" in log, describe(resumed_run["rerun"])
    assert_complete_run(resumed_run["run_dir"], cells)


# -- a checkpoint is corrupted on disk -------------------------------------------------------
def test_corrupt_dense_checkpoint_is_recomputed(standalone_cluster, resumed_run,  # noqa: F811
                                                tmp_path: Path):
    data, cells = resumed_run["data"], resumed_run["cells"]
    assert_ok(resumed_run["rerun"], standalone_cluster)
    output = tmp_path / "runs"
    shutil.copytree(resumed_run["output"], output)  # the run directory's name does not change
    run_dir = prune_run_dir(data, output)
    dense = ArtifactStore(str(run_dir / "replicate-0" / "dense"))
    original = load_checkpoint(dense, "epoch-001")
    checkpoint = run_dir / "replicate-0" / "dense" / "epoch-001.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])

    proc = spark_submit(standalone_cluster, "prune_imagenet.py", prune_args(data, output),
                        cwd=scratch_cwd(tmp_path))
    assert_ok(proc, standalone_cluster)
    reported = [line for line in job_log(proc).splitlines()
                if "corrupt" in line and "epoch-001.npz" in line]
    assert reported, f"no log line names the corrupt checkpoint\n{describe(proc)}"
    recomputed = load_checkpoint(dense, "epoch-001")  # verifies the new file's SHA-256
    assert len(recomputed) == len(original)
    assert_complete_run(run_dir, cells)
    # Cells rewound to epoch 1 must start from the weights that are now on disk.
    ticket = load_ticket(RunLayout(str(run_dir)).replicate(0).cell_dir(Cell(1, 1)), "ticket")
    drift = max(float(np.max(np.abs(a - b))) for a, b in zip(recomputed, original, strict=True))
    for i, (stored, rewind_point) in enumerate(zip(ticket.weights, recomputed, strict=True)):
        kept = stored != 0
        np.testing.assert_array_equal(
            stored[kept], rewind_point[kept],
            err_msg=f"weight {i}: the L1-k1 ticket does not start from the recomputed "
                    f"epoch-001 (which differs from the original by up to {drift:g})")


# -- the ingest is killed halfway ------------------------------------------------------------
def test_killed_ingest_is_redone_without_duplicates(standalone_cluster, fault_data,  # noqa: F811
                                                    tmp_path: Path):
    source, _ = fault_data
    output = tmp_path / "out" / "dataset"
    output.parent.mkdir()
    args = ["--source", str(source), "--output", str(output), "--image-size", "32"]
    cwd = scratch_cwd(tmp_path)
    job = start_submit(standalone_cluster, "ingest_imagenet.py", args, cwd=cwd,
                       log=tmp_path / "killed.log")
    try:
        # Spark creates train/ in the staging directory when the first write job starts.
        poll_until(lambda: list(output.parent.glob(".tmp-*-dataset/train")), JOB_TIMEOUT_S,
                   "the ingest to start writing", interval=0.1, alive=job)
    finally:
        job.kill()
    standalone_cluster.wait_until_idle()
    assert not output.exists(), "the ingest published before it was killed"
    stale = sorted(p.name for p in output.parent.glob(".tmp-*"))
    assert stale, "the killed ingest left no staging directory (nothing to clean up)"

    proc = spark_submit(standalone_cluster, "ingest_imagenet.py", args, cwd=cwd)
    assert_ok(proc, standalone_cluster)
    assert not list(output.parent.glob(".tmp-*")), sorted(output.parent.iterdir())
    removed = [line for line in job_log(proc).splitlines() if "left behind" in line]
    assert len(removed) == len(stale) and stale[0] in removed[0], describe(proc)
    info = json.loads((output / "dataset.json").read_text())
    assert info["rows"] == {"train": TRAIN_ROWS, "val": VAL_ROWS}
    for split, expected in (("train", TRAIN_ROWS), ("val", VAL_ROWS)):
        files = {f"{p.parent.name}/{p.name}" for p in (source / split).glob("*/*")}
        sources = pq.read_table(output / split, columns=["source"]).column("source").to_pylist()
        assert len(sources) == len(set(sources)) == len(files) == expected, split
        assert set(sources) == files


# -- GPU addresses from the standalone scheduler, without GPUs -------------------------------
GPU_PROBE = """
    import json
    import os
    import sys
    import time

    sys.path.insert(0, {repo!r})

    from pipeline.spark_session import get_spark


    def probe(index):
        from pyspark import TaskContext

        from pipeline.train.devices import (
            GPUUnavailable,
            assigned_gpu_addresses,
            configure_task_devices,
            device_environment,
        )

        addresses = list(TaskContext.get().resources()["gpu"].addresses)
        time.sleep(2)  # hold the slot so that the next task goes to the other executor
        try:
            configure_task_devices()
            error = None
        except GPUUnavailable as exc:  # this machine has no GPU behind the fake addresses
            error = str(exc)
        return {{"task": index, "addresses": addresses, "assigned": assigned_gpu_addresses(),
                 "environment": device_environment(addresses), "error": error,
                 "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "cwd": os.getcwd()}}


    spark = get_spark("gpu-probe")
    rows = spark.sparkContext.parallelize(range(4), 4).map(probe).collect()
    print("GPU " + json.dumps(rows))
    from pipeline.experiment.micro_batch import executor_gpu_memory
    print("GPUMEM " + json.dumps(executor_gpu_memory(spark, 4)))
    spark.stop()
"""

# nvidia-smi as the executors run it for the micro-batch: GPU 0 has 16 GiB, GPU 1 15 GiB
FAKE_NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *"-i 0"*) echo 16384 ;;
  *"-i 1"*) echo 15360 ;;
  *) exit 9 ;;
esac
"""


def test_tasks_get_their_executors_gpu(standalone_cluster, tmp_path: Path):  # noqa: F811
    script = tmp_path / "gpu_probe.py"
    script.write_text(textwrap.dedent(GPU_PROBE.format(repo=str(REPO))))
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (fake_bin / "nvidia-smi").chmod(0o755)
    cluster, gpus = standalone_cluster, FAKE_GPUS
    offered = {w["port"]: w["resources"]["gpu"]["addresses"] for w in cluster.alive_workers()}
    assert offered == {cluster.workers[i].port: gpus[i] for i in gpus}, offered
    proc = spark_submit(cluster, script, [], cwd=scratch_cwd(tmp_path), conf={
        "spark.executor.resource.gpu.amount": "1",
        "spark.task.resource.gpu.amount": "1",
        "spark.python.worker.reuse": "true",  # safe: one GPU per executor
        "spark.executorEnv.PATH": f"{fake_bin}:{os.environ['PATH']}",
    })
    assert_ok(proc, cluster)
    worker_dirs = {i: str(cluster.worker_dir(i)) + "/" for i in gpus}
    line = next(x for x in proc.stdout.splitlines() if x.startswith("GPU "))
    rows = json.loads(line.removeprefix("GPU "))
    assert len(rows) == 4
    seen = set()
    for row in rows:
        assert len(row["addresses"]) == 1, row
        address = row["addresses"][0]
        assert row["assigned"] == [address], row
        assert row["environment"]["CUDA_VISIBLE_DEVICES"] == address, row
        # a GPU TensorFlow cannot open fails the task at once, naming it and why
        assert row["error"].startswith(
            f"task was assigned GPU {address} but TensorFlow sees 0 GPU(s): "), row
        assert row["visible"] == address, row
        worker = next(i for i, d in worker_dirs.items() if row["cwd"].startswith(d))
        assert address in gpus[worker], f"worker {worker} offers {gpus[worker]}: {row}"
        seen.add(address)
    assert seen == {"0", "1"}, f"both executors should have run tasks: {rows}"
    # the micro-batch is sized for the smallest GPU any task saw
    memory = json.loads(next(x for x in proc.stdout.splitlines()
                             if x.startswith("GPUMEM ")).removeprefix("GPUMEM "))
    assert memory in (15360 * 2**20, 16384 * 2**20), memory
