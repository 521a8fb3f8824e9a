"""Measure the spread that ``tests/train/test_convergence.py`` derives its bound from.

``python -m tests.support.convergence_spread [SEEDS]`` (default 15) runs the test's recipe
for seeds 0..SEEDS-1 and prints the paired gap (distributed - single process, val top-1)
per seed, their mean and standard deviation, and the bound the test would allow for the
mean of 5 seeds: the mean plus 3 standard errors.
"""

from __future__ import annotations

import statistics
import sys
import tempfile


def main(seeds: int) -> None:
    from pipeline.data.ingest import ingest_imagenet
    from pipeline.data.sample import make_sample_imagenet
    from pipeline.data.settings import IngestSettings
    from pipeline.spark_session import get_spark
    from tests.train.test_convergence import _distributed, _single_process

    spark = get_spark("convergence-spread", master="local[2]",
                      conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"})
    with tempfile.TemporaryDirectory() as root:
        make_sample_imagenet(f"{root}/src", train_per_class=100, val_per_class=50, size=32)
        url = ingest_imagenet(f"{root}/src", f"{root}/ds", IngestSettings(image_size=16),
                              spark=spark).output
        gaps = []
        for seed in range(seeds):
            single = _single_process(url, seed)
            distributed, _ = _distributed(spark, url, seed)
            gaps.append(distributed - single)
            print(f"seed {seed}: single {single:.3f} distributed {distributed:.3f} "
                  f"gap {100 * gaps[-1]:+.1f} points", flush=True)
    spark.stop()
    mean, sd = statistics.mean(gaps), statistics.stdev(gaps)
    print(f"gaps (points): {' '.join(f'{100 * g:+.1f}' for g in gaps)}")
    print(f"mean {100 * mean:+.2f} sd {100 * sd:.2f}; bound for a 5-seed mean: "
          f"{100 * (-mean + 3 * sd / 5 ** 0.5):.1f} points")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
