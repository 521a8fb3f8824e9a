"""CPU accounting for benchmarks on a shared machine.

* :func:`cpu_seconds`: user + system CPU seconds of this process and every live descendant
  (a Spark JVM, the PySpark daemon and its Python workers): what a run actually got.
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
