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

from pipeline.config import ConfigError, help_text  # noqa: E402
from pipeline.experiment.settings import PruneJobSettings  # noqa: E402

PROG = "prune_imagenet"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Dense training, magnitude pruning, rewinding and control runs on Spark.",
        epilog=help_text(PruneJobSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML file of settings (conf/local.yaml, ...)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting"
    )
    parser.add_argument("--print-run-dir", action="store_true",
                        help="print the run directory these settings map to, and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from pipeline.config import load_config
    from pipeline.data.readers import DatasetError
    from pipeline.experiment.job import run_prune_job
    from pipeline.experiment.preflight import PreflightError
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.logs import setup_logging
    from pipeline.store import StoreError

    setup_logging()
    try:
        settings = load_config(PruneJobSettings, args.config, args.set)
        if args.print_run_dir:
            print(RunDirectory(settings).url)
            return 0
        outcome = run_prune_job(settings)
    except (ConfigError, PreflightError, DatasetError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    failed = [r["cell"] for r in outcome.rows if r.get("status") != "ok"]
    print(f"run directory: {outcome.run_url}")
    print(f"report: {outcome.report_url}")
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; rerun to retry them",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
