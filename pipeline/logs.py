"""Logging set-up for jobs and a progress reporter with counts and an ETA."""

from __future__ import annotations

import logging
import sys
import time


def setup_logging(level: int = logging.INFO) -> None:
    """Timestamped one-line logs on stderr; quiets py4j and TensorFlow chatter."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("py4j", "tensorflow", "absl", "matplotlib", "PIL", "petastorm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Progress:
    """Reports ``done/total`` with elapsed time and an ETA after each finished unit."""

    def __init__(self, label: str, total: int, logger: logging.Logger) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.log = logger
        self.start = time.monotonic()

    def step(self, what: str = "", count: int = 1) -> None:
        self.done += count
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        suffix = f" {what}" if what else ""
        self.log.info(
            "%s %d/%d%s (elapsed %.0fs, ETA %.0fs)",
            self.label, self.done, self.total, suffix, elapsed, max(eta, 0.0),
        )
