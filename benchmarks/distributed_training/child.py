"""One Elephas dense-training run in its own process, with the executors' peak memory.

``python -m benchmarks.distributed_training.child --dataset DS --images-per-task N --batch-size B
--epochs E --result FILE [--master local[2]]`` starts a SparkSession (a fresh JVM and fresh
Python workers), trains ``ModelSpec("mobilenet_v2", 64, classes, alpha=0.35)`` on the train
split of ``DS`` for ``E`` epochs through the project's path (``DatasetSplit.row_groups``,
``TrainingProcedure``, ``make_spark_model``, ``train_epoch``), and writes to ``FILE``::

    {"peak_rss_mib", "peak_hwm_mib", "workers", "images", "rounds", "seconds", ...}

Memory: a thread polls, every :data:`POLL_SECONDS`, every descendant of this (driver)
process whose command line contains ``pyspark.daemon`` or ``pyspark/worker`` — the PySpark
daemon the JVM starts and the Python workers it forks, which run the training tasks. For each
it records the largest resident set seen (psutil ``rss``) and the kernel's high-water mark
``VmHWM`` from ``/proc/PID/status`` (exact, so short peaks between polls are not missed while
the process lives). ``peak_hwm_mib`` is the largest high-water mark of any such process.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

POLL_SECONDS = 0.05
MARKERS = ("pyspark.daemon", "pyspark/worker")
MIB = 2**20


def _hwm_bytes(pid: int) -> int:
    """The kernel's peak resident set (VmHWM) of ``pid``, 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class WorkerMemory:
    """Polls the PySpark Python processes below this process; keeps per-process peaks."""

    def __init__(self, interval: float = POLL_SECONDS) -> None:
        self.interval = interval
        self.rss: dict[int, int] = {}
        self.hwm: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> None:
        import psutil

        try:
            children = psutil.Process().children(recursive=True)
        except psutil.Error:
            return
        for proc in children:
            try:
                if proc.pid not in self.names:
                    cmdline = " ".join(proc.cmdline())
                    if not any(marker in cmdline for marker in MARKERS):
                        continue
                    self.names[proc.pid] = cmdline[-80:]
                rss = proc.memory_info().rss
            except psutil.Error:
                continue
            self.rss[proc.pid] = max(self.rss.get(proc.pid, 0), rss)
            self.hwm[proc.pid] = max(self.hwm.get(proc.pid, 0), _hwm_bytes(proc.pid), rss)

    def summary(self) -> dict[str, Any]:
        return {
            "peak_rss_mib": max(self.rss.values(), default=0) / MIB,
            "peak_hwm_mib": max(self.hwm.values(), default=0) / MIB,
            "processes": len(self.names),
            "per_process_hwm_mib": sorted(round(v / MIB, 1) for v in self.hwm.values()),
        }


def train(dataset: str, images_per_task: int, batch_size: int, epochs: int, master: str
          ) -> dict[str, Any]:
    from pipeline.data.dataset import DatasetSplit
    from pipeline.data.readers import read_classes, split_url
    from pipeline.experiment.settings import TrainSettings
    from pipeline.models.spec import ModelSpec
    from pipeline.spark_session import default_parallelism, get_spark
    from pipeline.train.data_parallel import make_spark_model, train_epoch
    from pipeline.train.optimizers import make_loss, make_optimizer
    from pipeline.train.procedure import TrainingProcedure

    classes = len(read_classes(dataset))
    with WorkerMemory() as memory:
        started = time.monotonic()
        spark = get_spark("bench-training", master=master,
                          conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"})
        startup = time.monotonic() - started
        try:
            workers = default_parallelism(spark)
            train_url = split_url(dataset, "train")
            groups = DatasetSplit.of(train_url).row_groups()
            images = sum(g.count for g in groups)
            spec = ModelSpec("mobilenet_v2", 64, classes, alpha=0.35)
            settings = TrainSettings(epochs=epochs, batch_size=batch_size, augment=False,
                                     round_images_per_worker=images_per_task)
            job = TrainingProcedure(spec, train_url, classes, images, workers, batch_size,
                                    images_per_task, augment=False, seed=0)
            optimizer = make_optimizer(settings, job.steps_per_epoch)
            spark_model = make_spark_model(spec.build(), job, optimizer, make_loss(0.0))
            history = []
            for epoch in range(1, epochs + 1):
                stats = train_epoch(spark.sparkContext, spark_model, job, groups, epoch)
                history.append({**stats.to_dict(), "round_seconds": stats.round_seconds})
        finally:
            spark.stop()
    return {
        **memory.summary(),
        "images": images,
        "workers": workers,
        "images_per_task": images_per_task,
        "rounds": sum(h["rounds"] for h in history),
        "seconds": sum(h["seconds"] for h in history),
        "session_startup_seconds": startup,
        "history": history,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--images-per-task", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    result = train(args.dataset, args.images_per_task, args.batch_size, args.epochs,
                   args.master)
    Path(args.result).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
