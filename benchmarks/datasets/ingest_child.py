"""One Spark ingest in its own process (a SparkSession's master is fixed once it starts).

``python -m benchmarks.datasets.ingest_child --master local[N] --source SRC --output OUT
--image-size S --result FILE [--warmup-source SMALL]`` starts a SparkSession, optionally
ingests ``SMALL`` first (untimed: starts the Python workers and warms the JVM), then ingests
``SRC`` and writes ``{"master", "seconds", "images", "images_per_s"}`` to ``FILE``. ``seconds``
is the ingest's own figure, which excludes SparkSession start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.driver.memory": "2g",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--result", required=True)
    parser.add_argument("--warmup-source")
    args = parser.parse_args()

    from pipeline.data.ingest import ingest_imagenet
    from pipeline.data.settings import IngestSettings
    from pipeline.spark_session import default_parallelism, get_spark

    started = time.monotonic()
    cores = args.master.removeprefix("local[").removesuffix("]")
    conf = {**SPARK_CONF, "spark.sql.shuffle.partitions": cores}
    spark = get_spark("bench", master=args.master, conf=conf)
    config = IngestSettings(image_size=args.image_size)
    startup = time.monotonic() - started
    try:
        probe: dict[str, float] = {}
        if args.warmup_source:
            scratch = args.output + ".warmup"
            for key in ("warmup_seconds", "probe_seconds"):
                done = ingest_imagenet(args.warmup_source, scratch, config, overwrite=True,
                                       spark=spark)
                probe[key] = done.seconds
            probe["probe_images"] = sum(done.rows.values()) + done.rejected
            shutil.rmtree(scratch, ignore_errors=True)
        done = ingest_imagenet(args.source, args.output, config, overwrite=True, spark=spark)
        result = {
            "master": args.master,
            "parallelism": default_parallelism(spark),
            "seconds": done.seconds,
            "images": sum(done.rows.values()) + done.rejected,
            "rejected": done.rejected,
            "images_per_s": done.images_per_s,
            **probe,
            "session_startup_seconds": startup,
        }
    finally:
        spark.stop()
    Path(args.result).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
