"""Train a finished run's tickets on another data set (Morcos et al. 2019), with controls.

    spark-submit [spark options] jobs/transfer_tickets.py --from RUN_DIR --data TARGET_URL \
        [--target-run TARGET_RUN_DIR] [--config FILE] [--set key=value ...]

The transfer run starts from the source run's settings (same model, same training budget
unless overridden) with ``data.url`` set to the target, and lives in
``RUN_DIR/transfer/transfer-<hash>/`` unless ``run.output`` says otherwise. For each
source level and rewind point it trains the source ticket (new classifier, mask held),
a random mask over the transferred weights and the ticket's mask over a fresh
initialization; baselines are the dense source network transferred (level 0) and the
dense network trained from scratch on the target; ``--target-run`` adds the tickets found
on the target itself, and is refused (naming the first differing key) unless that run was
made on TARGET_URL with this transfer's training settings (``data.*``, ``model.*``,
``train.*``, ``prune.*`` but ``prune.levels``, ``rewind.optimizer``, ``grid.data_order``,
and ``early_bird.*`` when it stops training early). Rerunning the same command resumes.
``--help`` lists every setting.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from pipeline.job_cli import settings_parser  # noqa: E402
from pipeline.transfer.settings import TransferJobSettings  # noqa: E402

PROG = "transfer_tickets"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = settings_parser(PROG, "Ticket transfer to another data set, on Spark.",
                             TransferJobSettings,
                             config_help="YAML file of settings applied over the source's")
    parser.add_argument("--from", dest="source", required=True,
                        help="run directory of a finished run of jobs/prune_imagenet.py")
    parser.add_argument("--data", required=True,
                        help="target data set: an output of jobs/ingest_imagenet.py")
    parser.add_argument("--target-run", default="",
                        help="a finished run on the target data set with this transfer's "
                        "training settings (its tickets join the table)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.job_cli import fail, finish, user_errors
    from pipeline.logs import setup_logging
    from pipeline.transfer.job import run_transfer_job
    from pipeline.transfer.settings import load_transfer_settings

    setup_logging()
    try:
        settings = load_transfer_settings(args.source, args.data, args.config, args.set,
                                          target_run=args.target_run)
        if args.print_run_dir:
            print(RunDirectory(settings).url)
            return 0
        outcome = run_transfer_job(settings)
    except user_errors() as exc:
        return fail(PROG, exc)
    return finish({"run directory": outcome.run_url, "report": outcome.report_url}, outcome.rows)


if __name__ == "__main__":
    sys.exit(main())
