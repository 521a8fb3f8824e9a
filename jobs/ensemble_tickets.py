"""Prediction ensembles and merged tickets of a finished run of jobs/prune_imagenet.py.

    spark-submit [spark options] jobs/ensemble_tickets.py RUN_DIR [--set key=value ...]

Prediction ensembles average the softmax outputs of K tickets (across replicates, across
rewind points, or listed with ensemble.members) on val, against the best member and the
dense network. Merged tickets (the union or intersection of two tickets' masks) train
like grid cells. Results go to RUN_DIR/ensembles/ (results.csv/.parquet with a kind
column, report.md). Rerunning skips merged tickets already trained. ``--help`` lists every
setting.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from pipeline.config import ConfigError, help_text  # noqa: E402
from pipeline.ensembles.settings import EnsembleJobSettings  # noqa: E402

PROG = "ensemble_tickets"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Ticket ensembles of a finished run, on Spark.",
        epilog=help_text(EnsembleJobSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", help="run directory of a finished run")
    parser.add_argument("--config", help="YAML file of ensemble.* settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from pipeline.config import load_config
    from pipeline.data.readers import DatasetError
    from pipeline.ensembles.job import run_ensemble_job
    from pipeline.experiment.preflight import PreflightError
    from pipeline.logs import setup_logging
    from pipeline.store import StoreError

    setup_logging()
    try:
        settings = load_config(EnsembleJobSettings, args.config, args.set)
        outcome = run_ensemble_job(args.run_dir, settings.ensemble)
    except (ConfigError, PreflightError, DatasetError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    failed = [r["cell"] for r in outcome.rows if r.get("status") != "ok"]
    print(f"results: {outcome.output_url}")
    print(f"report: {outcome.report_url}")
    if failed:
        print(f"{len(failed)} merged ticket(s) failed: {', '.join(failed)}; rerun to retry",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
