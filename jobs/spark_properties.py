"""Print a cluster's Spark properties (conf/dataproc.yaml, conf/emr.yaml) for a submit command.

    python jobs/spark_properties.py conf/dataproc.yaml [--format submit|gcloud|emr]
        [--no-gpu] [--set spark.key=value ...]

submit: ``--conf k=v`` flags for spark-submit; gcloud: one ``--properties=...`` argument for
``gcloud dataproc jobs submit pyspark``; emr: a JSON list of arguments for an EMR step.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from pipeline.deploy.spark_properties import FORMATS, PropertiesError, render  # noqa: E402

PROG = "spark_properties"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Render a cluster's Spark properties for a submit command."
    )
    parser.add_argument("file", help="YAML file with a top-level spark_properties mapping")
    parser.add_argument("--format", choices=FORMATS, default="submit", help="output form")
    parser.add_argument(
        "--no-gpu", action="store_true", help="drop the *.resource.gpu.* keys (CPU-only cluster)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a property"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        text = render(args.file, args.format, gpu=not args.no_gpu, overrides=args.set)
    except PropertiesError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
