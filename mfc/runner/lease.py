"""The driving process's side of a run's lease: a daemon thread that rewrites the heartbeat
record (``<Flow>/<run>/_lease.json``) every ``lease_interval`` seconds through the blob store,
so it works the same on a local directory and on S3, and never blocks the scheduling thread.

``lease_interval = 0`` turns the heartbeat off: a run is then known to be alive only to readers on
its own machine (by its pid), and taken for running everywhere else until it ends.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from mfc.config import Config
from mfc.exceptions import MfcError, warn
from mfc.stores.lease import driver_record, lease_record
from mfc.stores.provider import MetadataProvider, open_metadata

TIMEOUT_INTERVALS = 4  # a lease expires after this many missed heartbeats (by default)


def lease_settings(config: Config) -> tuple[float, float | None]:
    """(interval, timeout) in seconds from ``lease_interval`` and ``lease_timeout``."""
    interval = float(config["lease_interval"])
    if interval < 0:
        raise MfcError(f"lease_interval ({config.sources['lease_interval']}): expected seconds >= 0, got {interval:g}")
    if interval == 0:
        return 0.0, None
    timeout = config["lease_timeout"]
    timeout = TIMEOUT_INTERVALS * interval if timeout is None else float(timeout)
    if timeout <= interval:
        raise MfcError(f"lease_timeout ({config.sources['lease_timeout']}): {timeout:g}s must be longer than "
                       f"lease_interval {interval:g}s, or every heartbeat would expire before the next")
    return interval, timeout


class LeaseKeeper:
    """Refreshes one run's lease from a daemon thread between :meth:`start` and :meth:`stop`."""

    def __init__(self, metadata: MetadataProvider, flow: str, run_id: str, driver: dict[str, Any]) -> None:
        self.metadata = metadata
        self.flow = flow
        self.run_id = run_id
        self.driver = driver
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Write the first heartbeat and keep refreshing it (no-op when the interval is 0). Call
        it after the fork server has started: it starts a thread."""
        if self.driver.get("interval", 0) <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._beat, name="mfc-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (the run's final status, written next, outweighs the lease)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)  # a slow store write may finish on its own; it is harmless

    def _beat(self) -> None:
        beat, failing = 0, False
        interval = float(self.driver["interval"])
        while not self._stopped.is_set():
            try:
                self.metadata.write_lease(self.flow, self.run_id, lease_record(self.driver, beat=beat))
                failing = False
            except Exception as exc:  # noqa: BLE001 - a failed heartbeat must not end the run
                if not failing:
                    warn(f"could not refresh the lease of run {self.flow}/{self.run_id} (retrying): {exc}")
                failing = True
            beat += 1
            self._stopped.wait(interval)


def measure_refresh(root: str, beats: int = 50) -> float:
    """Median seconds one heartbeat write takes on the datastore ``root`` (for ``make bench``):
    writes ``beats`` leases of a scratch run and removes them."""
    from mfc.stores.blob import open_blob_store

    metadata = open_metadata(open_blob_store(root))
    driver = driver_record(5.0, 20.0)
    flow, run_id = "MfcLeaseBenchmark", f"lease-{int(time.time() * 1000)}"
    times = []
    for beat in range(beats):
        started = time.perf_counter()
        metadata.write_lease(flow, run_id, lease_record(driver, beat=beat))
        times.append(time.perf_counter() - started)
    metadata.drop_lease(flow, run_id)
    return statistics.median(times)
