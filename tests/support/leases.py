"""Drivers racing for a run directory's lease."""

from __future__ import annotations

import threading

from pipeline.experiment.run_lease import RunLease, RunLeaseHeld
from pipeline.store import ArtifactStore


def race(store: ArtifactStore, contenders: int = 8, timeout: float = 60.0) -> list[RunLease]:
    """``contenders`` drivers acquiring at the same instant; the ones that got the lease."""
    leases = [RunLease(store, timeout, app_id=f"app-{i}") for i in range(contenders)]
    barrier, won, lock = threading.Barrier(contenders), [], threading.Lock()

    def contend(lease: RunLease) -> None:
        barrier.wait()
        try:
            lease.acquire()
        except RunLeaseHeld:
            return
        with lock:
            won.append(lease)

    threads = [threading.Thread(target=contend, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won
