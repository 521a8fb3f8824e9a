"""One driver per run directory (pipeline.experiment.run_lease) on local disk."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.experiment.run_lease import LEASE, RunLease, RunLeaseHeld
from pipeline.store import ArtifactStore
from tests.support.leases import race

REPO = Path(__file__).resolve().parents[2]


def _stale(store: ArtifactStore, host: str, pid: int, age: float) -> None:
    then = time.time() - age
    store.write_json({"host": host, "pid": pid, "app_id": "app-old", "token": "old",
                      "taken": then, "renewed": then}, LEASE)


def test_exactly_one_of_many_drivers_gets_the_lease(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "run"))
    for _ in range(10):
        won = race(store)
        assert len(won) == 1
        assert store.read_json(LEASE)["token"] == won[0].holder.token
        won[0].release()
        assert not store.exists(LEASE)


def test_the_second_driver_is_told_who_holds_it(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "run"))
    with RunLease(store, 60, app_id="local-123"):
        with pytest.raises(RunLeaseHeld) as held:
            RunLease(store, 60).acquire()
        line = str(held.value)
        assert "\n" not in line and "is in use by process" in line
        assert f"on {socket.gethostname()} (Spark application local-123), since " in line
    with RunLease(store, 60):  # released on exit: a rerun is never blocked
        pass
    with pytest.raises(RuntimeError), RunLease(store, 60):
        raise RuntimeError("the job failed")
    assert not store.exists(LEASE)  # released however the job ends


def test_a_stale_lease_is_taken_over_once(tmp_path, caplog) -> None:
    store = ArtifactStore(str(tmp_path / "run"))
    _stale(store, "elsewhere", 1, age=120)
    with pytest.raises(RunLeaseHeld, match="in use by process 1 on elsewhere"):
        RunLease(store, 300).acquire()  # 120 s is not stale yet at 300
    won = race(store, timeout=60)
    assert len(won) == 1 and store.read_json(LEASE)["token"] == won[0].holder.token
    assert store.exists("_LEASE.takeover-old")
    assert "taking over the lease of process 1 on elsewhere" in caplog.text
    won[0].release()


def test_a_killed_driver_on_this_host_is_taken_over_at_once(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "run"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    _stale(store, socket.gethostname(), int(dead.stdout), age=1)
    with RunLease(store, 300) as lease:
        assert store.read_json(LEASE)["token"] == lease.holder.token


def test_the_holder_renews_its_lease(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path / "run"))
    with RunLease(store, 3.0):  # a beat every second
        first = store.read_json(LEASE)["renewed"]
        deadline = time.monotonic() + 30
        while store.read_json(LEASE)["renewed"] == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.read_json(LEASE)["renewed"] > first
        with pytest.raises(RunLeaseHeld):
            RunLease(store, 3.0).acquire()  # renewed: not stale


def test_a_second_job_on_a_leased_run_exits_1_before_writing(sample_dataset, tmp_path) -> None:
    from pipeline.experiment.run_dir import RunDirectory
    from tests.support.job_settings import tiny_settings

    overrides = ["train.epochs=1", "prune.levels=1", "rewind.epochs=[0]", "grid.controls=[]"]
    settings = tiny_settings(sample_dataset, str(tmp_path / "runs"), *overrides)
    run = RunDirectory(settings)
    with RunLease(run.store, 60, app_id="local-first"):
        job = subprocess.run(
            [sys.executable, str(REPO / "jobs" / "prune_imagenet.py"), "--config",
             str(REPO / "conf" / "local.yaml"), "--set", f"data.url={sample_dataset}",
             "--set", f"run.output={tmp_path / 'runs'}",
             *[a for o in _tiny_flags(settings) for a in ("--set", o)]],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert job.returncode == 1, job.stderr[-2000:]
        lines = [ln for ln in job.stderr.splitlines() if ln.startswith("prune_imagenet")]
        assert len(lines) == 1 and "is in use by process" in lines[0], job.stderr[-2000:]
        assert "Spark application local-first" in lines[0]
        assert sorted(p.name for p in Path(run.store.path()).iterdir()) == [LEASE]


def _tiny_flags(settings) -> list[str]:  # noqa: ANN001
    """``--set`` values that give the job ``settings`` from conf/local.yaml."""
    from pipeline.config import flatten, to_dict

    return [f"{key}={json.dumps(value)}" for key, value in flatten(to_dict(settings)).items()
            if key not in ("data.url", "run.output")]
