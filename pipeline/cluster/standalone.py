"""A Spark standalone master and workers on 127.0.0.1, for tests and for people.

Every process is started from the installed pyspark (``spark-class``) in its own process
group (its executors and their Python workers are launched inside it), with its log in
``<base_dir>/logs``. ``stop()`` signals exactly those groups: SIGTERM, a grace period,
then SIGKILL. ``worker_gpus`` makes worker *i* offer the given GPU addresses through a
discovery script of its own, so GPU scheduling can be exercised on a machine without GPUs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "cluster.json"

# Variables that would make the daemons (and the executors they launch) use another Spark,
# attach to a driver's gateway, or import the project from somewhere other than the zip
# each job ships.
_DROPPED_ENV = ("SPARK_HOME", "SPARK_CONF_DIR", "PYSPARK_SUBMIT_ARGS", "PYSPARK_GATEWAY_PORT",
                "PYSPARK_GATEWAY_SECRET", "PYTHONPATH", "MASTER")


class ClusterError(RuntimeError):
    """The cluster could not be started or reached; the message quotes its logs."""


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def installed_spark_home() -> str | None:
    """``SPARK_HOME`` when it names a Spark install (one with ``bin/spark-class``)."""
    home = os.environ.get("SPARK_HOME")
    return home if home and (Path(home) / "bin" / "spark-class").is_file() else None


def spark_script(name: str, python: str) -> str:
    """Spark's ``bin/<name>`` (spark-class, spark-submit): the install in ``SPARK_HOME`` when
    it is set (a cluster's own Spark, as on Dataproc and EMR), else the one next to the
    interpreter (the venv's pyspark), else the one on PATH."""
    home = installed_spark_home()
    if home:
        return str(Path(home) / "bin" / name)
    candidate = Path(python).parent / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ClusterError(f"{name} not found in SPARK_HOME, next to {python} or on PATH; "
                           "install pyspark into the project's environment")
    return found


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"({path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def fetch_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read().decode("utf-8"))


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_process_groups(
    pids: Sequence[int],
    timeout: float = 20.0,
    children: Mapping[int, subprocess.Popen] | None = None,
) -> None:
    """SIGTERM the process groups led by ``pids``, wait up to ``timeout``, SIGKILL the rest.

    ``children`` are the Popen objects of those of ``pids`` that this process started; they
    are reaped so that no zombie keeps a group alive.
    """
    children = children or {}
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        for pid in remaining:
            if pid in children:
                children[pid].poll()
        remaining = [pid for pid in remaining if _group_exists(pid)]
        if remaining:
            time.sleep(0.2)
    for pid in remaining:
        _signal_group(pid, signal.SIGKILL)
    for pid in pids:
        if pid in children:
            try:
                children[pid].wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@dataclass
class ClusterProcess:
    """One daemon: a master or a worker, leader of its own process group."""

    name: str
    pid: int
    log: Path
    popen: subprocess.Popen | None = None
    port: int = 0
    stopped: bool = False

    def exited(self) -> bool:
        return self.popen is not None and self.popen.poll() is not None


class StandaloneCluster:
    """A master and ``workers`` workers on 127.0.0.1; a context manager.

    ``with StandaloneCluster(2) as cluster: ... cluster.master_url ...`` starts everything,
    waits until every worker is registered and stops exactly its own processes on exit.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        cores: int = 1,
        memory: str = "2g",
        base_dir: str | Path | None = None,
        python: str | None = None,
        worker_gpus: Mapping[int, Sequence[str]] | None = None,
        start_timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.num_workers = workers
        self.cores = cores
        self.memory = memory
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="lottery-spark-cluster-"))
        self.base_dir = self.base_dir.resolve()
        self.log_dir = self.base_dir / "logs"
        self.python = python or sys.executable
        self.worker_gpus = {int(i): [str(a) for a in addrs]
                            for i, addrs in (worker_gpus or {}).items()}
        self.start_timeout = start_timeout
        self.extra_env = dict(env or {})
        self.master: ClusterProcess | None = None
        self.workers: list[ClusterProcess] = []
        self.master_port = 0
        self.webui_port = 0

    # -- addresses -----------------------------------------------------------------------
    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def webui_url(self) -> str:
        return f"http://{HOST}:{self.webui_port}"

    @property
    def master_pid(self) -> int | None:
        return self.master.pid if self.master else None

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def worker_dir(self, index: int) -> Path:
        return self.base_dir / f"worker-{index}"

    # -- start ---------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env.update(
            SPARK_LOCAL_IP=HOST,
            SPARK_CONF_DIR=str(self.base_dir / "conf"),  # empty: no stray spark-defaults.conf
            PYSPARK_PYTHON=self.python,
            PYSPARK_DRIVER_PYTHON=self.python,
            SPARK_DAEMON_MEMORY=env.get("SPARK_DAEMON_MEMORY", "512m"),
            TF_CPP_MIN_LOG_LEVEL=env.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        )
        if installed_spark_home():
            env["SPARK_HOME"] = installed_spark_home()  # the install the daemons run from
        env.update(self.extra_env)
        return env

    def _launch(self, name: str, args: list[str], port: int,
                env: Mapping[str, str] | None = None) -> ClusterProcess:
        log = self.log_dir / f"{name}.log"
        command = [spark_script("spark-class", self.python), *args]
        with open(log, "ab") as out:
            out.write(f"$ {shlex.join(command)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**self.environment(), **(env or {})}, cwd=self.base_dir,
                start_new_session=True,
            )
        return ClusterProcess(name, popen.pid, log, popen, port)

    def start(self) -> StandaloneCluster:
        """Start the master and the workers and wait until all workers are registered."""
        if self.master is not None:
            raise ClusterError(f"cluster {self.master_url} was already started")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / "conf").mkdir(exist_ok=True)
        try:
            self.master_port, self.webui_port = free_port(), free_port()
            self.master = self._launch("master", [
                MASTER_CLASS, "--host", HOST, "--port", str(self.master_port),
                "--webui-port", str(self.webui_port),
            ], self.master_port)
            self._wait(lambda state: True, "the master's web UI to answer")
            for index in range(self.num_workers):
                self.workers.append(self._start_worker(index))
            self.wait_for_workers(self.num_workers)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_worker(self, index: int) -> ClusterProcess:
        home = self.worker_dir(index)
        (home / "spark-work").mkdir(parents=True, exist_ok=True)
        (home / "local").mkdir(exist_ok=True)
        port = free_port()
        args = [
            WORKER_CLASS, "--host", HOST, "--port", str(port), "--cores", str(self.cores),
            "--memory", self.memory, "--work-dir", str(home / "spark-work"),
            "--webui-port", str(free_port()),
        ]
        if index in self.worker_gpus:
            args += ["--properties-file", str(self._gpu_properties(index))]
        args.append(self.master_url)
        return self._launch(f"worker-{index}", args, port,
                            env={"SPARK_LOCAL_DIRS": str(home / "local")})

    def _gpu_properties(self, index: int) -> Path:
        """A discovery script printing this worker's GPU addresses, and the properties
        file that points the worker at it."""
        home = self.worker_dir(index)
        addresses = self.worker_gpus[index]
        script = home / "gpu-discovery.sh"
        payload = json.dumps({"name": "gpu", "addresses": addresses})
        script.write_text(f"#!/bin/sh\necho {shlex.quote(payload)}\n")
        script.chmod(0o755)
        properties = home / "worker.properties"
        properties.write_text(
            f"spark.worker.resource.gpu.amount {len(addresses)}\n"
            f"spark.worker.resource.gpu.discoveryScript {script}\n"
        )
        return properties

    # -- state ---------------------------------------------------------------------------
    def master_state(self) -> dict[str, Any]:
        """The master web UI's ``/json/`` document (workers, applications)."""
        return fetch_json(f"{self.webui_url}/json/")

    def alive_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.master_state().get("workers", []) if w.get("state") == "ALIVE"]

    def _wait(self, ready: Any, what: str, timeout: float | None = None) -> dict[str, Any]:
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            dead = [p.name for p in self._processes() if not p.stopped and p.exited()]
            if dead:
                raise ClusterError(f"{', '.join(dead)} exited while waiting for {what}\n"
                                   + self.log_tail())
            try:
                state = self.master_state()
                if ready(state):
                    return state
                last_error = f"alive workers: {_alive_count(state)}"
            except (OSError, ValueError) as exc:
                last_error = str(exc)
            time.sleep(0.5)
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what} "
                           f"({last_error})\n{self.log_tail()}")

    def wait_for_workers(self, count: int, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait until at least ``count`` workers are ALIVE at the master; returns them."""
        state = self._wait(lambda s: _alive_count(s) >= count,
                           f"{count} worker(s) to register with {self.master_url}", timeout)
        return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]

    def wait_until_idle(self, timeout: float = 120.0) -> None:
        """Wait until the master lists no running application (e.g. after a driver died)."""
        self._wait(lambda s: not s.get("activeapps"), "running applications to end", timeout)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of every daemon's log and of each executor's stderr."""
        parts = []
        for proc in self._processes():
            parts.append(f"--- {proc.log} ---\n{tail(proc.log, lines)}")
        for stderr in sorted(self.base_dir.glob("worker-*/spark-work/*/*/stderr")):
            parts.append(f"--- {stderr} ---\n{tail(stderr, lines)}")
        return "\n".join(parts)

    # -- stop ----------------------------------------------------------------------------
    def _processes(self) -> list[ClusterProcess]:
        return ([self.master] if self.master else []) + list(self.workers)

    def kill_worker(self, index: int) -> int:
        """SIGKILL worker ``index``'s process group (the worker and its executors)."""
        worker = self.workers[index]
        _signal_group(worker.pid, signal.SIGKILL)
        if worker.popen is not None:
            worker.popen.wait(timeout=30)
        worker.stopped = True
        return worker.pid

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every process this cluster started (idempotent)."""
        procs = [p for p in reversed(self._processes()) if not p.stopped]
        children = {p.pid: p.popen for p in procs if p.popen is not None}
        # Workers first, so that they do not log the master's disappearance as an error.
        stop_process_groups([p.pid for p in procs if p is not self.master], timeout, children)
        if self.master is not None and not self.master.stopped:
            stop_process_groups([self.master.pid], timeout, children)
        for proc in procs:
            proc.stopped = True

    def __enter__(self) -> StandaloneCluster:
        return self.start() if self.master is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- detached use (jobs/cluster.py) --------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "master_url": self.master_url,
            "webui_url": self.webui_url,
            "master_pid": self.master_pid,
            "worker_pids": self.worker_pids,
            "base_dir": str(self.base_dir),
            "logs": str(self.log_dir),
        }

    def write_state(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path else self.base_dir / STATE_FILE
        target.write_text(json.dumps(self.state(), indent=2) + "\n")
        return target


def _alive_count(state: Mapping[str, Any]) -> int:
    return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


def _is_spark_daemon(pid: int) -> bool | None:
    """True/False when ``pid`` runs/does not run a Spark master or worker; None if gone."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return _group_exists(pid) or None
    return b"org.apache.spark.deploy." in cmdline


def stop_recorded(state: Mapping[str, Any], timeout: float = 20.0) -> list[int]:
    """Stop the processes recorded by :meth:`StandaloneCluster.write_state`.

    A recorded PID now running something other than a Spark daemon (PID reuse) is left
    alone. Returns the PIDs that were signalled.
    """
    pids = [*state.get("worker_pids", []), state.get("master_pid")]
    ours = []
    for pid in (int(p) for p in pids if p):
        running = _is_spark_daemon(pid)
        # A leader that is gone can leave its group (executors) behind; the group id cannot
        # be reused while that group exists, so it is still ours.
        if running or (running is None and _group_exists(pid)):
            ours.append(pid)
    workers = [p for p in ours if p != state.get("master_pid")]
    stop_process_groups(workers, timeout)
    stop_process_groups([p for p in ours if p == state.get("master_pid")], timeout)
    return ours


def recorded_status(state: Mapping[str, Any]) -> dict[str, Any]:
    """Which recorded daemons are running, and what the master reports."""
    out: dict[str, Any] = {
        "master_url": state.get("master_url"),
        "master_running": bool(_is_spark_daemon(int(state.get("master_pid") or 0))),
        "workers_running": [bool(_is_spark_daemon(int(p))) for p in state.get("worker_pids", [])],
    }
    try:
        master = fetch_json(f"{state.get('webui_url')}/json/")
        out["alive_workers"] = _alive_count(master)
        out["active_apps"] = [a.get("name") for a in master.get("activeapps", [])]
    except (OSError, ValueError, urllib.error.URLError) as exc:
        out["master_error"] = str(exc)
    return out
