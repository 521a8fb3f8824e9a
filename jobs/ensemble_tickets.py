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

from pipeline.ensembles.settings import EnsembleJobSettings  # noqa: E402
from pipeline.job_cli import settings_parser  # noqa: E402

PROG = "ensemble_tickets"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = settings_parser(PROG, "Ticket ensembles of a finished run, on Spark.",
                             EnsembleJobSettings, config_help="YAML file of ensemble.* settings",
                             print_run_dir=False)
    parser.add_argument("run_dir", help="run directory of a finished run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from pipeline.config import load_config
    from pipeline.ensembles.job import run_ensemble_job
    from pipeline.job_cli import fail, finish, user_errors
    from pipeline.logs import setup_logging

    setup_logging()
    try:
        settings = load_config(EnsembleJobSettings, args.config, args.set)
        outcome = run_ensemble_job(args.run_dir, settings.ensemble)
    except user_errors() as exc:
        return fail(PROG, exc)
    return finish({"results": outcome.output_url, "report": outcome.report_url}, outcome.rows)


if __name__ == "__main__":
    sys.exit(main())
