"""CPU accounting for benchmarks on a shared machine.

* :func:`cpu_seconds`: user + system CPU seconds of this process and every live descendant
  (a Spark JVM, the PySpark daemon and its Python workers): what a run actually got.
* :func:`spark_python_workers`: the PySpark Python workers running under this process.
* :func:`available_cores`: how many cores ``processes`` busy-looping processes get together,
  right now (CPU-seconds ÷ wall-seconds). On an idle 2-core machine this is about 2.0; when
  other tenants load the cores it drops, and a figure that needs two cores in parallel (a
  local[2] speedup, two Elephas workers) cannot exceed what the probe shows.
"""

from __future__ import annotations

import subprocess
import sys

_SPIN = (
    "import time\n"
    "w, c = time.perf_counter(), time.process_time()\n"
    "while time.perf_counter() - w < {seconds}: pass\n"
    "print(time.process_time() - c, time.perf_counter() - w)\n"
)


def cpu_seconds() -> float:
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for proc in me.children(recursive=True):
        try:
            total += sum(proc.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def available_cores(processes: int = 2, seconds: float = 1.5) -> float:
    """CPU-seconds per wall-second that ``processes`` spinning processes got together."""
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN.format(seconds=seconds)],
                              stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate()
        cpu, wall = (float(v) for v in out.split())
        total += cpu / wall
    return round(total, 2)


def spark_python_workers() -> list[int]:
    """PIDs of the PySpark Python workers below this process (the daemon's forked children):
    a wave that runs on the same PIDs as the one before it started no fresh worker."""
    import psutil

    workers = []
    for proc in psutil.Process().children(recursive=True):
        try:
            parent = proc.parent()
            if parent is not None and "pyspark.daemon" in " ".join(parent.cmdline()):
                workers.append(proc.pid)
        except psutil.Error:
            pass
    return sorted(workers)
