"""Find lottery tickets for a model trained on an ingested ImageNet: the main job.

    spark-submit [spark options] jobs/prune_imagenet.py --config conf/local.yaml \
        [--set key=value ...]

Trains the dense model data-parallel with Elephas (checkpoint every epoch), then trains
the grid of pruning levels × rewind epochs plus control runs across the cluster, and
writes results.parquet/csv, figures and report.md to the run directory. Rerunning the
same command resumes an interrupted run. ``--help`` lists every setting.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from pipeline.experiment.settings import PruneJobSettings  # noqa: E402
from pipeline.job_cli import settings_parser  # noqa: E402

PROG = "prune_imagenet"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = settings_parser(
        PROG, "Dense training, magnitude pruning, rewinding and control runs on Spark.",
        PruneJobSettings)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from pipeline.config import load_config
    from pipeline.experiment.job import run_prune_job
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.job_cli import fail, finish, user_errors
    from pipeline.logs import setup_logging

    setup_logging()
    try:
        settings = load_config(PruneJobSettings, args.config, args.set)
        if args.print_run_dir:
            print(RunDirectory(settings).url)
            return 0
        outcome = run_prune_job(settings)
    except user_errors() as exc:
        return fail(PROG, exc)
    return finish({"run directory": outcome.run_url, "report": outcome.report_url}, outcome.rows)


if __name__ == "__main__":
    sys.exit(main())
