"""Fixtures and helpers for tests on a loopback standalone cluster, driven by spark-submit.

Test modules import the helpers they use; the fixtures are in ``tests/cluster/conftest.py``.
Every job runs as ``spark-submit --master <cluster> <repo>/jobs/X.py`` in a scratch
directory outside the repository, in its own process group, so that a test can kill its
driver by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cluster import StandaloneCluster
from pipeline.cluster.standalone import installed_spark_home, spark_script

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
LOCAL_CONF = REPO / "conf" / "local.yaml"

SUBMIT_TIMEOUT_S = 900.0

# The small main-job run every cluster test uses: LeNet, 2 epochs, one level, rewind 0 and 1,
# both controls (from conf/local.yaml): the dense row plus 8 cells (2 level-0 references, 2
# tickets, 4 controls; expected_cells lists them).
PRUNE_SETTINGS = (
    "run.replicates=1",
    "model.name=lenet_300_100",
    "train.epochs=2",
    "prune.levels=1",
    "rewind.epochs=[0, 1]",
    "train.round_images_per_worker=64",
)
# The digits sample every cluster test reads (tests/cluster/conftest.py ingests it once).
TRAIN_PER_CLASS, VAL_PER_CLASS, CLASSES = 20, 6, 10
# GPU addresses each worker of the session's cluster offers (none is real).
FAKE_GPUS = {0: ["0"], 1: ["1"]}
_DROPPED_ENV = ("PYTHONPATH", "PYSPARK_SUBMIT_ARGS", "PYSPARK_GATEWAY_PORT",
                "PYSPARK_GATEWAY_SECRET", "SPARK_HOME", "SPARK_CONF_DIR", "MASTER")


@dataclass(frozen=True)
class ClusterIngest:
    """The digits sample (``source``) and its spark-submit ingest on the cluster: the
    finished process and the dataset it wrote (checked by ``test_ingest_on_the_cluster``)."""

    source: Path
    proc: subprocess.CompletedProcess
    dataset: Path


def submit_conf(cluster: StandaloneCluster, extra: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """Spark properties of every test submit (``extra`` wins)."""
    return {
        "spark.task.maxFailures": "4",
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.pyspark.python": str(PYTHON),
        "spark.pyspark.driver.python": str(PYTHON),
        # Start jobs only once every worker's executor is there, so work is spread the
        # same way in every run.
        "spark.cores.max": str(cluster.num_workers * cluster.cores),
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
        **(extra or {}),
    }


def submit_env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    # Temporaries of a killed driver (the shipped zip, Spark's dirs) stay in the test's tree.
    tmp = cwd / "scratch" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    if installed_spark_home():
        env["SPARK_HOME"] = installed_spark_home()  # the cluster's own Spark
    env.update(PYSPARK_PYTHON=str(PYTHON), PYSPARK_DRIVER_PYTHON=str(PYTHON), TMPDIR=str(tmp),
               TF_CPP_MIN_LOG_LEVEL="3", SPARK_LOCAL_IP="127.0.0.1")
    return env


def submit_command(cluster: StandaloneCluster, script: str | Path, args: Sequence[str],
                   cwd: Path, conf: Mapping[str, str] | None = None) -> list[str]:
    """``spark-submit --master <cluster> --conf ... <repo>/jobs/<script> args``."""
    path = Path(script) if Path(script).is_absolute() else REPO / "jobs" / script
    command = [spark_script("spark-submit", str(PYTHON)), "--master", cluster.master_url]
    conf = {"spark.local.dir": str(cwd / "scratch" / "spark"), **(conf or {})}
    for key, value in submit_conf(cluster, conf).items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(path), *map(str, args)]


@dataclass
class Submission:
    """A spark-submit running in the background, output in ``log``."""

    popen: subprocess.Popen
    log: Path
    command: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait(self, timeout: float = SUBMIT_TIMEOUT_S) -> int:
        """Exit status; on timeout the driver is killed and the test fails with its log."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"spark-submit ran past {timeout:.0f}s: {self.command}\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the driver's process group (spark-submit's JVM and its Python driver)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=60)


def start_submit(cluster: StandaloneCluster, script: str | Path, args: Sequence[str], *,
                 cwd: Path, log: Path, conf: Mapping[str, str] | None = None) -> Submission:
    """Start spark-submit in the background in its own process group."""
    command = submit_command(cluster, script, args, cwd, conf)
    with open(log, "wb") as out:
        popen = subprocess.Popen(command, cwd=cwd, env=submit_env(cwd), stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Submission(popen, log, command)


def spark_submit(cluster: StandaloneCluster, script: str | Path, args: Sequence[str], *,
                 cwd: Path, conf: Mapping[str, str] | None = None,
                 timeout: float = SUBMIT_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run spark-submit to completion; returns the process with ``stdout`` and ``stderr``."""
    command = submit_command(cluster, script, args, cwd, conf)
    popen = subprocess.Popen(command, cwd=cwd, env=submit_env(cwd), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        stdout, stderr = popen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        stdout, stderr = popen.communicate()
        pytest.fail(f"spark-submit ran past {timeout:.0f}s: {command}\n{stderr[-6000:]}")
    return subprocess.CompletedProcess(command, popen.returncode, stdout, stderr)


def job_log(proc: subprocess.CompletedProcess) -> str:
    """Everything the job printed: spark-submit forwards the Python driver's stderr (where
    the job logs) to its own stdout, and Spark's JVM logs to stderr."""
    return proc.stdout + "\n" + proc.stderr


def describe(proc: subprocess.CompletedProcess, cluster: StandaloneCluster | None = None) -> str:
    """A failure message: the exit status, the tail of the job's output and of the cluster."""
    out = [f"exit status {proc.returncode}: {' '.join(proc.args[-6:])}",
           "--- stdout ---", proc.stdout[-3000:], "--- stderr ---", proc.stderr[-8000:]]
    if cluster is not None:
        out += ["--- cluster ---", cluster.log_tail(20)]
    return "\n".join(out)


def assert_ok(proc: subprocess.CompletedProcess, cluster: StandaloneCluster | None = None) -> None:
    assert proc.returncode == 0, describe(proc, cluster)


def poll_until(condition: Callable[[], object], timeout: float, what: str,
               interval: float = 0.5, alive: Submission | None = None) -> object:
    """Return ``condition()``'s first truthy value; fail after ``timeout`` or when the
    ``alive`` submission exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if alive is not None and not alive.running():
            pytest.fail(f"the job exited ({alive.popen.returncode}) before {what}:\n"
                        f"{alive.tail()}")
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}"
                + (f":\n{alive.tail()}" if alive else ""))


# -- the main job --------------------------------------------------------------------------
def prune_args(data_url: str, output: str | Path, *extra: str) -> list[str]:
    args = ["--config", str(LOCAL_CONF), "--set", f"data.url={data_url}",
            "--set", f"run.output={output}"]
    for setting in (*PRUNE_SETTINGS, *extra):
        args += ["--set", setting]
    return args


def prune_settings(data_url: str, output: str | Path, *extra: str):  # noqa: ANN201
    """The settings the job will resolve from :func:`prune_args` (read here, no Spark)."""
    from pipeline.config import load_config
    from pipeline.experiment.settings import PruneJobSettings

    overrides = [f"data.url={data_url}", f"run.output={output}", *PRUNE_SETTINGS, *extra]
    return load_config(PruneJobSettings, LOCAL_CONF, overrides)


def prune_run_dir(data_url: str, output: str | Path, *extra: str) -> Path:
    """The local run directory the job will use for these settings."""
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.store import local_path

    return Path(local_path(RunDirectory(prune_settings(data_url, output, *extra)).url))


def expected_cells(data_url: str, output: str | Path, *extra: str) -> set[str]:
    from pipeline.experiment.cells import grid_cells

    return {cell.name for cell in grid_cells(prune_settings(data_url, output, *extra))}


def cell_results(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("replicate-*/grid/L*/k*/*/result.json"))


def leftover_temporaries(root: Path) -> list[Path]:
    """Hidden staging files or directories of atomic writes that were never moved into place."""
    return sorted(root.rglob(".tmp-*"))


def checkpoint_names(run_dir: Path) -> list[tuple[Path, str]]:
    """``(directory, name)`` of every checksummed checkpoint (``name.npz`` + ``name.json``
    with a SHA-256) below the run directory."""
    out = []
    for npz in sorted(run_dir.rglob("*.npz")):
        record = npz.with_suffix(".json")
        if record.exists() and "sha256" in json.loads(record.read_text()):
            out.append((npz.parent, npz.stem))
    return out


def assert_complete_run(run_dir: Path, cells: set[str]) -> pd.DataFrame:
    """The run's results table has the dense row and one ok row per cell, its report exists,
    no temporary is left behind and every checkpoint passes its checksum."""
    from pipeline.store import ArtifactStore
    from pipeline.train.checkpoints import load_checkpoint

    table = pd.read_csv(run_dir / "results.csv")
    names = table["cell"].tolist()
    assert len(names) == len(set(names)), f"duplicate rows: {names}"
    assert set(names) == {"dense", *cells}, names
    assert (table["status"] == "ok").all(), table.loc[table.status != "ok", ["cell", "error"]]
    assert (run_dir / "report.md").is_file()
    assert len(cell_results(run_dir)) == len(cells)
    assert not leftover_temporaries(run_dir), leftover_temporaries(run_dir)
    checkpoints = checkpoint_names(run_dir)
    assert len(checkpoints) >= 1 + len(cells), checkpoints  # dense epochs + cell weights
    for directory, name in checkpoints:
        load_checkpoint(ArtifactStore(str(directory)), name)  # raises if corrupt
    return table


def scratch_cwd(parent: Path) -> Path:
    """A fresh working directory for spark-submit below ``parent``, outside the repository."""
    cwd = parent / "cwd"
    cwd.mkdir(exist_ok=True)
    assert REPO not in cwd.resolve().parents, cwd
    return cwd
