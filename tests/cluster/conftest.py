"""Fixtures for the spark-submit tests: a loopback standalone cluster and a scratch cwd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cluster.standalone import StandaloneCluster
from tests.support.cluster_jobs import PYTHON, scratch_cwd


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """A master and 2 workers × 1 core on 127.0.0.1 for the test module."""
    base = tmp_path_factory.mktemp("standalone")
    with StandaloneCluster(2, cores=1, memory="2g", base_dir=base, python=str(PYTHON)) as cluster:
        yield cluster


@pytest.fixture
def submit_cwd(tmp_path: Path) -> Path:
    """An empty working directory for spark-submit, outside the repository."""
    return scratch_cwd(tmp_path)
