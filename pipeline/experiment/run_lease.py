"""One driver per run directory: a lease taken before the first write, renewed, released.

The lease is ``_LEASE.json`` at the top of the run directory: the holder (host, process
id, Spark application id), a random token, when it was taken and when it was last renewed.
A driver creates it with the store's create-only write
(:meth:`pipeline.store.ArtifactStore.create_exclusive`), so of two drivers starting at
once exactly one gets it; the other stops with one line naming the holder. A thread renews
it every third of ``run.lease_timeout``; the holder deletes it when the job ends, however
it ends. A lease not renewed for ``run.lease_timeout`` seconds, or held by a process of
this host that no longer exists, belongs to a driver that died: a new driver takes it
over by first creating ``_LEASE.takeover-<token>`` (create-only again, so two drivers
cannot both take over the same stale lease), then replacing the lease. Executors never
touch it.

Guarantees follow the store: local disks, S3 and GCS create conditionally; HDFS through
pyarrow cannot, so there two drivers starting in the same instant may both proceed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.store import ArtifactStore, StoreError, local_path

log = logging.getLogger(__name__)

LEASE = "_LEASE.json"
TAKEOVER = "_LEASE.takeover-{token}"


class RunLeaseHeld(Exception):
    """Another driver holds the run directory; the message names it in one line."""


@dataclass
class Holder:
    host: str
    pid: int
    app_id: str
    token: str
    taken: float  # seconds since the epoch
    renewed: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.taken))
        return (f"process {self.pid} on {self.host} (Spark application {self.app_id or '?'}), "
                f"since {since}")


class RunLease:
    """The lease on ``store``'s run directory; use as a context manager."""

    def __init__(self, store: ArtifactStore, timeout: float, app_id: str = "") -> None:
        self.store, self.timeout = store, float(timeout)
        now = time.time()
        self.holder = Holder(socket.gethostname(), os.getpid(), app_id, uuid.uuid4().hex,
                             now, now)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        import json

        return json.dumps(asdict(self.holder), sort_keys=True).encode()

    def _current(self) -> Holder | None:
        try:
            return Holder(**self.store.read_json(LEASE))
        except (StoreError, TypeError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the lease or raise :class:`RunLeaseHeld`."""
        if self.store.create_exclusive(self._body(), LEASE):
            return self._start()
        current = self._current()
        if current is None:  # released, or half-read, in between: one more honest try
            if self.store.create_exclusive(self._body(), LEASE):
                return self._start()
            current = self._current()
        age = time.time() - current.renewed if current else 0.0
        gone = current is not None and self._died(current)
        if current is None or (age < self.timeout and not gone):
            who = current.describe() if current else "another driver"
            raise RunLeaseHeld(
                f"run directory {self.store.root} is in use by {who}; wait for it to end, "
                f"or after {self.timeout:g} s without renewal (run.lease_timeout) it is "
                f"taken over")
        if not self.store.create_exclusive(self._body(), TAKEOVER.format(token=current.token)):
            raise RunLeaseHeld(f"run directory {self.store.root}: another driver is taking "
                               f"over the stale lease of {current.describe()}")
        log.warning("run directory %s: taking over the lease of %s (%s)", self.store.root,
                    current.describe(), "its process is gone" if gone
                    else f"not renewed for {age:.0f} s")
        self._replace()
        self._start()

    def _died(self, holder: Holder) -> bool:
        """The holder ran on this host and its process is gone (a killed driver)."""
        if holder.host != self.holder.host or holder.pid == self.holder.pid:
            return False
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _replace(self) -> None:
        """Overwrite the lease with no moment in which it is absent (a gap would let another
        driver's create-only write in): an atomic rename on local disks; object stores
        replace an object whole."""
        local = local_path(self.store.url(LEASE))
        if local is None:
            self.store.write_bytes(self._body(), LEASE)
            return
        tmp = f"{local}.{self.holder.token}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(self._body())
        os.replace(tmp, local)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._renew, name="run-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.timeout / 3):
            current = self._current()
            if current is not None and current.token != self.holder.token:
                log.error("run directory %s: the lease now belongs to %s; this driver "
                          "no longer holds it", self.store.root, current.describe())
                return
            self.holder.renewed = time.time()
            try:
                self._replace()
            except (StoreError, OSError) as exc:  # renewal is retried on the next beat
                log.warning("run directory %s: cannot renew the lease: %s", self.store.root,
                            exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        current = self._current()
        if current is not None and current.token == self.holder.token:
            self.store.delete(LEASE)

    def __enter__(self) -> RunLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
