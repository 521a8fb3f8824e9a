"""Run every benchmark, each in its own subprocess, and write ``results.json`` and ``results.md``.

``python -m benchmarks.harness.run_all [--only NAME[,NAME]] [--quick] [--out DIR]`` from the
repository root (``make bench``).

Each module in :data:`BENCHMARKS` runs as ``python benchmarks/NAME/bench.py --json FILE`` in a
fresh process (TensorFlow and Spark state, memory), from the repository root and with it
first on ``PYTHONPATH``, in that order; optional modules that do not exist yet are skipped. A
module is named by its folder (``benchmarks/grid_speedup/bench.py`` is ``grid_speedup``), or
by its file name when it is a single file. ``--only`` takes result names (``ingest_scaling``)
or module names (``ingest_throughput``) and runs the modules that produce them (a module's
other results are kept). ``--quick`` sets ``LOTTERY_BENCH_QUICK=1`` in the children: smaller
sizes, a smoke run.

``DIR/results.json`` (default ``benchmarks/``) is one object::

    {"machine": {cpu, cores, memory_gib, python, tensorflow, pyspark, date, ...},
     "modules": [{"module", "status", "seconds", "returncode"}, ...],
     "results": [{name, ratio, target, better, value, unit, baseline, repetitions, spread,
                  inputs, status: "ok", met, module}, ...]}

The machine description is stated once, at the top level, for all results. A module that fails
(non-zero exit, no or malformed output) yields one entry per result it should have produced,
with ``status: "error"``, its return code and the tail of its stderr; the other modules still
run. ``DIR/results.md`` is a Markdown table of the results, also printed. The exit status is
non-zero only if every module that ran failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness.common import (
    BENCH_DIR,
    QUICK_ENV,
    ROOT,
    machine_info,
    python_path_env,
    target_met,
    validate_result,
)

STDERR_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Benchmark:
    """A benchmark module and the result names it produces."""

    path: Path
    names: tuple[str, ...] = field(default_factory=tuple)
    optional: bool = False  # written by others; skipped while the file does not exist

    @property
    def module(self) -> str:
        """The folder's name for ``NAME/bench.py``, else the file's stem."""
        return self.path.parent.name if self.path.name == "bench.py" else self.path.stem


def _bench(name: str, *results: str) -> Benchmark:
    return Benchmark(BENCH_DIR / name / "bench.py", results)


BENCHMARKS = (
    _bench("ingest_throughput", "ingest_vs_decode", "ingest_scaling"),
    _bench("reader_throughput", "reader_vs_decode"),
    _bench("masking_overhead", "masking_overhead", "mask_cost_vs_naive"),
    _bench("ticket_size", "ticket_size"),
    _bench("deploy_latency", "deploy_latency_sparse", "deploy_latency_slim50",
           "deploy_latency_slim25", "deploy_latency_keras", "deploy_size_sparse"),
    _bench("distributed_training", "distributed_vs_single", "memory_growth"),
    _bench("grid_speedup", "grid_speedup_vs_ideal"),
    _bench("cell_vs_keras", "cell_vs_keras"),
    _bench("early_bird_overhead", "early_bird_overhead"),
    _bench("worker_reuse", "worker_reuse_round_overhead"),
    _bench("memory_estimate", "memory_estimate_per_image"),
)


def select(benchmarks: Sequence[Benchmark], only: str | None) -> list[Benchmark]:
    """The benchmarks producing any of the comma-separated names (all without ``only``)."""
    if not only:
        return list(benchmarks)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    known = {b.module for b in benchmarks} | {n for b in benchmarks for n in b.names}
    unknown = wanted - known
    if unknown:
        raise ValueError(f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(known))}")
    return [b for b in benchmarks if b.module in wanted or wanted & set(b.names)]


def error_entries(bench: Benchmark, reason: str, returncode: int | None,
                  stderr: str) -> list[dict[str, Any]]:
    """One error entry per result the module should have produced."""
    return [
        {"name": name, "status": "error", "module": bench.module, "reason": reason,
         "returncode": returncode, "stderr_tail": stderr[-STDERR_TAIL_CHARS:]}
        for name in bench.names or (bench.module,)
    ]


def run_module(bench: Benchmark, quick: bool, python: str = sys.executable
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one module in a subprocess; returns its result entries and a run record."""
    env = python_path_env()
    env.setdefault("PYSPARK_PYTHON", python)
    env.setdefault("PYSPARK_DRIVER_PYTHON", python)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if quick:
        env[QUICK_ENV] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "results.json"
        errors = Path(tmp) / "stderr.txt"
        start = time.monotonic()
        with errors.open("w") as stderr:
            proc = subprocess.run([python, str(bench.path), "--json", str(out)],
                                  cwd=ROOT, env=env, stderr=stderr)
        seconds = round(time.monotonic() - start, 1)
        stderr_text = errors.read_text(errors="replace")
        record = {"module": bench.module, "seconds": seconds, "returncode": proc.returncode}
        if proc.returncode != 0:
            entries = error_entries(bench, f"exit status {proc.returncode}", proc.returncode,
                                    stderr_text)
        elif not out.exists():
            entries = error_entries(bench, "no --json output written", 0, stderr_text)
        else:
            entries = _check_output(bench, out, stderr_text)
    record["status"] = "ok" if all(e["status"] == "ok" for e in entries) else "error"
    return entries, record


def _check_output(bench: Benchmark, out: Path, stderr: str) -> list[dict[str, Any]]:
    try:
        results = json.loads(out.read_text())
        if isinstance(results, dict):
            results = [results]
        if not isinstance(results, list) or not results:
            raise ValueError("expected a non-empty list of result dicts")
        for result in results:
            validate_result(result)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return error_entries(bench, f"malformed output: {exc}", 0, stderr)
    return [{**r, "status": "ok", "met": target_met(r), "module": bench.module} for r in results]


def _number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a Markdown table (error entries show their reason)."""
    lines = [
        "| name | ratio | target | met? | value | baseline | unit | reps | spread |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.get("status", "ok") != "ok":
            reason = str(r.get("reason", "error")).replace("|", "/")
            lines.append(f"| {r['name']} | error | | | {reason} | | | | |")
            continue
        sign = ">=" if r["better"] == "higher" else "<="
        met = "yes" if target_met(r) else "no"
        lines.append(
            f"| {r['name']} | {r['ratio']:.3f} | {sign} {r['target']:g} | {met} | "
            f"{_number(r['value'])} | {_number(r['baseline'])} | {r['unit']} | "
            f"{r['repetitions']} | {r['spread']:.1%} |"
        )
    return "\n".join(lines) + "\n"


def merged_with_earlier(out_dir: Path, records: list[dict[str, Any]],
                        results: list[dict[str, Any]]) -> tuple[list, list]:
    """Records and results of a partial run, plus those of the modules it did not run from
    the earlier full run in ``out_dir``, in the order of :data:`BENCHMARKS`."""
    path = out_dir / "results.json"
    if not path.exists():
        return records, results
    earlier = json.loads(path.read_text())
    ran = {r["module"] for r in records}
    kept_records = [r for r in earlier.get("modules", []) if r["module"] not in ran]
    kept_results = [r for r in earlier.get("results", []) if r.get("module") not in ran]
    order = {b.module: i for i, b in enumerate(BENCHMARKS)}

    def position(entry: dict[str, Any]) -> int:
        return order.get(entry.get("module"), len(order))

    return (sorted(kept_records + records, key=position),
            sorted(kept_results + results, key=position))


def run_all(benchmarks: Sequence[Benchmark], quick: bool, out_dir: Path,
            python: str = sys.executable, merge: bool = False) -> int:
    """Run the benchmarks, write the reports; returns the exit status.

    With ``merge`` (a subset of a full run, ``--only``), the other modules' entries of the
    earlier run in ``out_dir`` are kept; every module record says when it ran.
    """
    results: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for bench in benchmarks:
        if not bench.path.exists():
            if not bench.optional:
                results += error_entries(bench, f"{bench.path.name} not found", None, "")
            records.append({"module": bench.module, "status": "skipped (not written yet)"
                            if bench.optional else "error", "seconds": 0.0, "returncode": None})
            print(f"== {bench.module}: {records[-1]['status']}", flush=True)
            continue
        print(f"== {bench.module}", flush=True)
        entries, record = run_module(bench, quick, python)
        record["date"] = machine_info()["date"]
        results += entries
        records.append(record)
        print(f"== {bench.module}: {record['status']} in {record['seconds']} s", flush=True)
    ran = [r for r in records if r["status"] in ("ok", "error")]
    status = 0 if any(r["status"] == "ok" for r in ran) else 1
    out_dir.mkdir(parents=True, exist_ok=True)
    if merge and not quick:
        records, results = merged_with_earlier(out_dir, records, results)
    report = {"machine": machine_info(), "modules": records, "results": results}
    (out_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(results)
    timing = "\n".join(f"- {r['module']}: {r['status']}, {r['seconds']} s"
                       + (f" ({r['date']})" if r.get("date") else "") for r in records)
    machine = report["machine"]
    (out_dir / "results.md").write_text(
        f"# Benchmark results\n\n{machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, TensorFlow "
        f"{machine['tensorflow']}, PySpark {machine['pyspark']}, {machine['date']}"
        f"{' (quick run)' if quick else ''}\n\n{table}\n{timing}\n"
    )
    print(table + timing, flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the benchmarks; see benchmarks/harness/run_all.py.")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help="result or module names to run; the others' earlier results "
                             "in --out are kept")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="where results.* go")
    args = parser.parse_args(argv)
    try:
        chosen = select(BENCHMARKS, args.only)
    except ValueError as exc:
        parser.error(str(exc))
    return run_all(chosen, args.quick, args.out, merge=args.only is not None)


if __name__ == "__main__":
    sys.exit(main())
