"""Shared fixtures: one local[2] SparkSession and one small ingested sample per test session."""

from __future__ import annotations

import os

import pytest

# fake-gcs-server (tests/objectstore/) has no gRPC storage-control API: gcsfs must not ask it
# for the bucket layout (read when gcsfs is imported), and google-auth must not probe the
# GCE metadata server. Every process the tests start inherits both.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("NO_GCE_CHECK", "true")


@pytest.fixture(scope="session")
def spark():
    from pipeline.spark_session import get_spark

    session = get_spark(
        "lottery-spark-tests",
        master="local[2]",
        conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_dataset(spark, tmp_path_factory) -> str:
    """URL of an ingest output (32×32) of the digits sample: 10 classes, 300 train, 100 val."""
    from pipeline.data.ingest import ingest_imagenet
    from pipeline.data.sample import make_sample_imagenet
    from pipeline.data.settings import IngestSettings

    root = tmp_path_factory.mktemp("sample_dataset")
    make_sample_imagenet(str(root / "source"), train_per_class=30, val_per_class=10, size=64)
    result = ingest_imagenet(
        str(root / "source"), str(root / "dataset"), IngestSettings(image_size=32), spark=spark
    )
    return result.output
