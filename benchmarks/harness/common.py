"""Helpers shared by the benchmarks and the harness (``run_all.py``).

Contract of a benchmark module ``benchmarks/NAME/bench.py`` (its helpers and child scripts
sit beside it in ``benchmarks/NAME/``):

* ``run(**kw) -> list[dict]`` returns one result dict per figure, built with
  :func:`make_result` (or carrying at least :data:`REQUIRED_KEYS`);
* run as ``python -m benchmarks.NAME.bench --json OUT [--quick]`` from the repository root
  (the harness runs ``python benchmarks/NAME/bench.py`` with the root on ``PYTHONPATH``) it
  writes that list to ``OUT``; :func:`bench_main` does this. ``--quick`` (or
  ``LOTTERY_BENCH_QUICK=1``, which the harness sets) calls ``run`` with the module's smaller
  "quick" keyword arguments.

Every figure is a ratio of two quantities measured in the same run, repeated: ``ratio`` is the
median of the per-repetition ratios, ``spread`` is (max - min) / median of those ratios, and
``value`` / ``baseline`` are the medians of the per-repetition quantities.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REQUIRED_KEYS = (
    "name",
    "ratio",
    "target",
    "better",
    "value",
    "unit",
    "baseline",
    "repetitions",
    "spread",
    "inputs",
)
QUICK_ENV = "LOTTERY_BENCH_QUICK"
BENCH_DIR = Path(__file__).resolve().parent.parent  # benchmarks/
ROOT = BENCH_DIR.parent  # the repository root: on PYTHONPATH of every benchmark process
WORK_DIR = BENCH_DIR / "scratch"  # git-ignored: generated inputs, datasets, scratch output


def median_spread(values: Sequence[float]) -> tuple[float, float]:
    """Median and spread ((max - min) / median) of per-repetition values."""
    if not values:
        raise ValueError("no values")
    median = statistics.median(values)
    spread = (max(values) - min(values)) / median if median else 0.0
    return median, spread


def make_result(
    name: str,
    values: Sequence[float],
    baselines: Sequence[float],
    target: float,
    better: str,
    unit: str,
    inputs: Mapping[str, Any],
    ratios: Sequence[float] | None = None,
) -> dict[str, Any]:
    """A result dict from paired per-repetition measurements.

    ``ratios`` defaults to ``value / baseline`` per repetition; pass it when the figure is
    another pairing (e.g. a slowdown ``baseline_time / value_time``).
    """
    if len(values) != len(baselines):
        raise ValueError(f"{name}: {len(values)} values but {len(baselines)} baselines")
    if ratios is None:
        ratios = [v / b for v, b in zip(values, baselines, strict=True)]
    ratio, spread = median_spread(ratios)
    result = {
        "name": name,
        "ratio": ratio,
        "target": target,
        "better": better,
        "value": statistics.median(values),
        "unit": unit,
        "baseline": statistics.median(baselines),
        "repetitions": len(ratios),
        "spread": spread,
        "inputs": {**inputs, "per_repetition_ratios": [round(r, 4) for r in ratios]},
    }
    validate_result(result)
    return result


def validate_result(result: Any) -> None:
    """Raise ValueError unless ``result`` is a well-formed result dict."""
    if not isinstance(result, dict):
        raise ValueError(f"a result must be a dict, got {type(result).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise ValueError(f"result {result.get('name', '?')!r} lacks {', '.join(missing)}")
    if result["better"] not in ("higher", "lower"):
        raise ValueError(f"{result['name']}: better must be 'higher' or 'lower'")
    for key in ("ratio", "target", "value", "baseline", "spread"):
        if not isinstance(result[key], int | float) or isinstance(result[key], bool):
            raise ValueError(f"{result['name']}: {key} must be a number, got {result[key]!r}")
    if not isinstance(result["repetitions"], int) or result["repetitions"] < 1:
        raise ValueError(f"{result['name']}: repetitions must be a positive int")
    if not isinstance(result["inputs"], dict):
        raise ValueError(f"{result['name']}: inputs must be a dict")


def target_met(result: Mapping[str, Any]) -> bool:
    if result["better"] == "higher":
        return result["ratio"] >= result["target"]
    return result["ratio"] <= result["target"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory and the versions the figures were measured with."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "pyspark": _version("pyspark"),
        "petastorm": _version("petastorm"),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def python_path_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the repository root first on ``PYTHONPATH``, so
    ``benchmarks.*`` imports resolve in a benchmark's process, its children and its Spark
    Python workers."""
    env = dict(os.environ if env is None else env)
    paths = [str(ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def run_child(module: str, args: Sequence[str], result: Path) -> dict[str, Any]:
    """Run ``python -m module ARGS --result RESULT`` (a benchmark's child script, in a fresh
    process) from the repository root; returns the JSON object it wrote to ``RESULT``."""
    import subprocess

    result.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", module, *args, "--result", str(result)],
                   check=True, cwd=ROOT, env=python_path_env())
    out = json.loads(result.read_text())
    result.unlink()
    return out


def is_quick(argv_quick: bool = False) -> bool:
    return argv_quick or os.environ.get(QUICK_ENV, "") not in ("", "0")


def bench_main(
    run: Callable[..., Any],
    quick: Mapping[str, Any] | None = None,
    argv: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Command line of a benchmark module: ``[--json OUT] [--quick]``."""
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "")[:200])
    parser.add_argument("--json", metavar="OUT", help="write the result list to OUT")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    args = parser.parse_args(argv)
    kwargs = dict(quick or {}) if is_quick(args.quick) else {}
    results = run(**kwargs)
    if isinstance(results, dict):
        results = [results]
    text = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    return results
