"""Petastorm's own readers on the project's datasets: which configuration sees every row.

Petastorm 0.13.1's thread pool can end an epoch early: ``ThreadPool.get_results`` asks
whether every worker is done with what it was given, then whether the ventilator has
handed out everything; when the ventilator hands out the last row groups between the two
questions, the pool reports the epoch over with row groups still unread (workers_pool/
thread_pool.py; with at most ``workers_count × 3`` row groups the whole epoch can go). The
dataset is not at fault. ``reader_pool_type="dummy"`` reads in the calling thread and saw
every row in every read.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline.data.dataset import IngestedDataset

READS = """
import json, sys, warnings
warnings.simplefilter("ignore")
from petastorm import make_reader
url, reads, pool = sys.argv[1], int(sys.argv[2]), sys.argv[3]
counts = []
for _ in range(reads):
    with make_reader(url, num_epochs=1, reader_pool_type=pool, workers_count=2) as reader:
        counts.append(sum(1 for _ in reader))
print(json.dumps(counts))
"""


def _counts(url: str, processes: int, reads: int, pool: str) -> list[int]:
    """Rows per read: ``reads`` readers in each of ``processes`` fresh processes."""
    counts: list[int] = []
    for _ in range(processes):
        done = subprocess.run([sys.executable, "-c", READS, url, str(reads), pool],
                              capture_output=True, text=True, timeout=300, check=True)
        counts += json.loads(done.stdout.strip().splitlines()[-1])
    return counts


@pytest.fixture(scope="module")
def split(sample_dataset) -> tuple[str, int]:
    dataset = IngestedDataset(sample_dataset)
    return f"{sample_dataset}/val", dataset.rows("val")


def test_the_dummy_pool_reads_every_row_every_time(split) -> None:
    url, rows = split
    counts = _counts(url, processes=5, reads=10, pool="dummy")
    assert counts == [rows] * 50


@pytest.mark.xfail(reason="petastorm 0.13.1's thread pool can end an epoch before its last "
                          "row groups are read (see the module docstring); an upgrade that "
                          "fixes it shows here as XPASS", strict=False)
def test_the_thread_pool_reads_every_row_every_time(split) -> None:
    url, rows = split
    counts = _counts(url, processes=2, reads=20, pool="thread")  # measured: 2 of 30 short
    short = [c for c in counts if c != rows]
    assert not short, f"{len(short)} of {len(counts)} reads came back short: {short}"
