"""Fixtures for the spark-submit tests: one loopback standalone cluster per test session,
the digits sample ingested on it once, and a scratch cwd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cluster.standalone import StandaloneCluster
from tests.support.cluster_jobs import (
    FAKE_GPUS,
    PYTHON,
    TRAIN_PER_CLASS,
    VAL_PER_CLASS,
    ClusterIngest,
    scratch_cwd,
    spark_submit,
)


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """A master and 2 workers × 1 core on 127.0.0.1, shared by the session's cluster tests
    (a test that kills a worker starts a cluster of its own). Each worker also offers one
    fake GPU address (``FAKE_GPUS``), which only a job that asks for GPUs is given."""
    base = tmp_path_factory.mktemp("standalone")
    with StandaloneCluster(2, cores=1, memory="2g", base_dir=base, python=str(PYTHON),
                           worker_gpus=FAKE_GPUS) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def cluster_ingest(standalone_cluster: StandaloneCluster,
                   tmp_path_factory: pytest.TempPathFactory) -> ClusterIngest:
    """20 train and 6 val digits per class (40×40 files), ingested at 32×32 on the cluster."""
    from pipeline.data.sample import make_sample_imagenet

    root = tmp_path_factory.mktemp("cluster_ingest")
    make_sample_imagenet(str(root / "source"), train_per_class=TRAIN_PER_CLASS,
                         val_per_class=VAL_PER_CLASS, size=40)
    proc = spark_submit(standalone_cluster, "ingest_imagenet.py",
                        ["--source", str(root / "source"), "--output", str(root / "dataset"),
                         "--image-size", "32"], cwd=scratch_cwd(root))
    return ClusterIngest(root / "source", proc, root / "dataset")


@pytest.fixture
def submit_cwd(tmp_path: Path) -> Path:
    """An empty working directory for spark-submit, outside the repository."""
    return scratch_cwd(tmp_path)
