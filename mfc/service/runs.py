"""A run as readers see it, from its row: the record ``BlobMetadata`` merges (info with status,
finished_at, result, tags) plus ``trigger`` and ``duration``. The status is
:func:`mfc.stores.runstatus.run_state`'s, from the row's facts (final record, lease, driver),
so the service says what ``mfc runs`` says.

A run a Step Functions execution drives and that has no final record is asked about through
:class:`ExecutionStatus` (when the service has an AWS config): answers are kept
:data:`EXECUTION_TTL` seconds per run, and once the execution has ended its final status is
written to the row (if still absent), so later reads need not ask.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import update

from mfc.service.db import Database
from mfc.service.schema import runs
from mfc.service.store import bump
from mfc.stores.lease import ProcessFact
from mfc.stores.lease import probe as process_probe
from mfc.stores.runstatus import FINAL_STATUSES, LEGACY_GRACE_SECONDS, SFN_DRIVER, RunState, run_state

EXECUTION_TTL = 5.0
Probe = Callable[[dict[str, Any]], "ProcessFact | None"]


def driver_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    driver = (row["info"] or {}).get("driver")
    return driver if isinstance(driver, dict) else None


def is_sfn(row: Mapping[str, Any]) -> bool:
    """Whether a Step Functions execution drives the run and it has no final status yet."""
    driver = driver_of(row)
    return bool(driver and driver.get("kind") == SFN_DRIVER and not _final(row))


def _final(row: Mapping[str, Any]) -> dict[str, Any] | None:
    final = row["final"]
    return final if isinstance(final, dict) and final.get("status") in FINAL_STATUSES else None


def state_of(row: Mapping[str, Any], now: float, attempts_activity: float | None = None,
             probe: Probe = process_probe, execution: dict[str, Any] | None = None) -> RunState:
    """The run's status from its row's facts (see :func:`mfc.stores.runstatus.run_state`)."""
    created_at = float(row["created_at"])
    final = _final(row)
    driver = driver_of(row)
    if final is not None or (driver and driver.get("kind") == SFN_DRIVER):
        return run_state(final, None, driver, created_at, now, None, execution=execution)
    lease = row["lease"] if isinstance(row["lease"], dict) else None
    seen = lease or driver
    old = seen is None and now - created_at > LEGACY_GRACE_SECONDS
    return run_state(None, lease, driver, created_at, now, probe(seen) if seen else None,
                     attempts_activity if old else None)


def merged_run(row: Mapping[str, Any], now: float, attempts_activity: float | None = None,
               probe: Probe = process_probe, execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's merged record (as ``BlobMetadata._merge`` gives it) with ``trigger`` and
    ``duration`` (seconds from creation to its end, or to ``now`` while it runs).
    ``attempts_activity``: the newest start or end of its attempts (only runs without a lease
    need it); ``execution``: what Step Functions said of the execution driving it."""
    state = state_of(row, now, attempts_activity, probe, execution)
    record = dict(row["info"] or {})
    final = row["final"] if isinstance(row["final"], dict) else None
    record["status"] = state.status
    record["finished_at"] = state.ended_at
    record["result"] = final or ({"status": state.status, "error": state.reason} if state.reason else {})
    record["tags"] = list(row["tags"] or [])
    record["trigger"] = row["trigger"] or {"kind": "manual"}
    end = state.ended_at if state.ended_at is not None else now
    record["duration"] = round(max(0.0, float(end) - float(row["created_at"])), 3)
    return record


class ExecutionStatus:
    """Asks Step Functions about the executions driving runs (``mfc.sfn.status``), keeping each
    answer :data:`EXECUTION_TTL` seconds, and records an ended one as the run's final status."""

    def __init__(self, db: Database, config: Any | None,
                 ask: Callable[[dict[str, Any], Any], dict[str, Any] | None] | None = None) -> None:
        self.db = db
        self.config = config
        self._ask = ask
        self._answers: dict[int, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def execution(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        """What Step Functions says of the run's execution; None without a config or an answer."""
        if self.config is None or not is_sfn(row):
            return None
        key = int(row["id"])
        with self._lock:
            cached = self._answers.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        ask = self._ask
        if ask is None:
            from mfc.sfn.status import execution_status

            ask = execution_status
        driver = driver_of(row) or {}
        answer = ask(driver, self.config)
        with self._lock:
            self._answers[key] = (time.monotonic() + EXECUTION_TTL, answer)
        return answer

    def merged(self, row: Mapping[str, Any], now: float, attempts_activity: float | None = None,
               probe: Probe = process_probe) -> dict[str, Any]:
        """:func:`merged_run` of the row, asking about its execution where one drives it; an
        ended execution's status is written as the run's final record."""
        execution = self.execution(row)
        record = merged_run(row, now, attempts_activity, probe, execution)
        if execution is not None and record["status"] != "running" and _final(row) is None:
            self.record_end(int(row["id"]), record, execution)
        return record

    def record_end(self, run_pk: int, record: dict[str, Any], execution: dict[str, Any]) -> None:
        """Write the final status derived from an ended execution, unless one is there already."""
        final: dict[str, Any] = {"status": record["status"], "finished_at": record["finished_at"],
                                 "execution_status": execution.get("status")}
        error = (record.get("result") or {}).get("error")
        if error:
            final["error"] = error
        with self.db.write() as conn:
            changed = conn.execute(update(runs).where(runs.c.id == run_pk, runs.c.final.is_(None)).values(
                final=final, final_status=final["status"], finished_at=final["finished_at"],
                updated_at=time.time())).rowcount
            if changed:
                bump(conn, run_pk)
