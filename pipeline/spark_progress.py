"""Periodic log lines with the task progress of a group of Spark jobs."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import TracebackType

from pyspark.sql import SparkSession


class JobProgress:
    """Context manager: runs the enclosed Spark actions in a job group and logs their progress.

    A daemon thread polls Spark's status tracker every ``interval`` seconds and logs the
    finished/total tasks of the group's stages, so long runs show they are moving.
    """

    def __init__(
        self, spark: SparkSession, label: str, interval: float, logger: logging.Logger
    ) -> None:
        self.sc = spark.sparkContext
        self.label = label
        self.interval = interval
        self.log = logger
        self.group = f"{label}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"progress-{label}", daemon=True)
        self._start = 0.0

    def tasks(self) -> tuple[int, int]:
        """(finished, total) tasks over the stages of this group's jobs so far."""
        tracker = self.sc.statusTracker()
        done = total = 0
        for job_id in tracker.getJobIdsForGroup(self.group):
            job = tracker.getJobInfo(job_id)
            for stage_id in job.stageIds if job else ():
                stage = tracker.getStageInfo(stage_id)
                if stage:
                    done += stage.numCompletedTasks
                    total += stage.numTasks
        return done, total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                done, total = self.tasks()
            except Exception:  # the tracker can race with shutdown; progress is best effort
                continue
            self.log.info(
                "%s: %d/%d tasks done (%.0fs)",
                self.label,
                done,
                total,
                time.monotonic() - self._start,
            )

    def __enter__(self) -> JobProgress:
        self._start = time.monotonic()
        self.sc.setJobGroup(self.group, self.label)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        self.sc.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]
