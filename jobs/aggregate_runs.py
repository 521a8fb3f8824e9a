"""Merge finished runs of the same settings (different seeds) into one study.

    python jobs/aggregate_runs.py RUN_DIR [RUN_DIR ...] --output DIR

Each RUN_DIR is a run directory of jobs/prune_imagenet.py (local path or URL). Runs whose
hashed settings differ other than in ``run.seed`` are refused, naming the first setting
that differs; so are a run given twice (under any spelling: trailing slash, relative path,
symlink) and runs that share a ``run.seed`` (the same replicates again): counting one
experiment twice is pseudo-replication. Writes results, summary and history tables,
figures, report.md and runs.json (which run each replicate came from) to DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

PROG = "aggregate_runs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run directories")
    parser.add_argument("--output", required=True, help="directory (or URL) for the study")
    args = parser.parse_args(argv)

    from pipeline.config import ConfigError
    from pipeline.experiment.aggregate import AggregateError, aggregate_runs
    from pipeline.logs import setup_logging
    from pipeline.store import StoreError

    setup_logging()
    try:
        report = aggregate_runs(args.runs, args.output)
    except (AggregateError, ConfigError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
