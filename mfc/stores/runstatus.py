"""A run's status, derived from facts: the one function every reader uses (``mfc runs``, the
client, resume, the task entrypoint refusing late records).

Facts, in order of weight:

1. A final status record (``_status.json``) wins: ``succeeded``, ``failed`` or ``interrupted``.
2. Else the lease of the process that drives the run: the newest heartbeat (``_lease.json``), or
   before the first one the ``driver`` part of the run record. Seen from the same machine, the
   process itself is the proof: alive with the same start time means ``running`` (even when a
   heartbeat is late, say while the machine is swamped), gone or its pid reused means
   ``crashed`` at once. Seen from elsewhere, the lease is ``running`` until ``expires_at``
   (its writer's clock), ``crashed`` after.
   A run driven by a Step Functions execution (driver kind ``sfn``) has no lease: the
   execution's own status decides (``execution``, asked of Step Functions by the reader).
   Ended without a final record (aborted, timed out, or failed where no task could record
   it): ``failed``, naming the execution's status and error; succeeded (the end task's write
   lost): ``succeeded``; still running, or not askable (no credentials, unreachable):
   ``running``.
3. A run recorded by an mfc without leases (no ``driver``, no ``_lease.json``): ``running``
   while something happened in it (its creation, a task record) in the last
   ``LEGACY_GRACE_SECONDS``, ``crashed`` after that: such a run cannot be proven alive, and one
   left behind by a dead process would otherwise stay "running" forever.

A crashed run's end (``ended_at``) is its last sign of life, so its duration stops growing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mfc.stores.lease import ProcessFact

FINAL_STATUSES = ("succeeded", "failed", "interrupted")
STATUSES = ("running", *FINAL_STATUSES, "crashed")
LEGACY_GRACE_SECONDS = 3600.0
SFN_DRIVER = "sfn"  # the driver kind of a run a Step Functions execution drives (mfc.sfn.runstart)
EXECUTION_FAILURES = ("FAILED", "TIMED_OUT", "ABORTED")
CAUSE_CHARS = 300  # of an execution's cause in a reason (a Batch job's cause is a whole JSON document)


@dataclass(frozen=True)
class RunState:
    """What a reader should say about a run: its status, when it ended and (crashed, or failed
    with no final record) why."""

    status: str
    ended_at: float | None = None
    reason: str | None = None

    @property
    def ended(self) -> bool:
        return self.status != "running"


def when(timestamp: float) -> str:
    """A timestamp as the CLI shows it (local time, to the second)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def run_state(final: dict[str, Any] | None, lease: dict[str, Any] | None, driver: dict[str, Any] | None,
              created_at: float, now: float, process: ProcessFact | None,
              last_activity: float | None = None, execution: dict[str, Any] | None = None) -> RunState:
    """The status of a run from its final status record, its newest heartbeat, the run record's
    ``driver`` and ``created_at``, the reader's clock, what the reader saw of the driving
    process (``probe``: alive, gone, reused, or None when it cannot look), for runs without
    a lease only, the time of the latest task record, and, for a run a Step Functions
    execution drives, what the reader was told of that execution (``{"status": "RUNNING" |
    "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED", "stopped_at": epoch or None, "error",
    "cause"}``, or None when it could not ask)."""
    if final is not None and final.get("status") in FINAL_STATUSES:
        return RunState(final["status"], final.get("finished_at"))
    if driver and driver.get("kind") == SFN_DRIVER:
        return _execution_state(execution, now)
    heartbeat = lease if lease is not None else _first_heartbeat(driver, created_at)
    if heartbeat is None:
        return _legacy(created_at, now, last_activity)
    last = float(heartbeat.get("refreshed_at") or created_at)
    who = f"pid {heartbeat.get('pid')} on host {heartbeat.get('host')}"
    if process == "alive":
        return RunState("running")
    if process == "gone":
        return RunState("crashed", last, f"the process driving it ({who}) is gone; last heartbeat at {when(last)}")
    if process == "reused":
        return RunState("crashed", last, f"the process driving it ({who}) is gone (that pid is now another "
                                         f"process); last heartbeat at {when(last)}")
    expires = heartbeat.get("expires_at")
    if expires is not None and now > float(expires):
        return RunState("crashed", last, f"its lease expired at {when(float(expires))}: the process driving it "
                                         f"({who}) sent no heartbeat since {when(last)}")
    return RunState("running")


def _execution_state(execution: dict[str, Any] | None, now: float) -> RunState:
    """A Step Functions run without a final record: as its execution stands. An execution that
    does not say when it stopped ended by the reader's clock at the latest."""
    if execution is None:
        return RunState("running")
    status, stopped = execution.get("status"), execution.get("stopped_at")
    ended = float(stopped) if isinstance(stopped, (int, float)) else now
    if status == "SUCCEEDED":
        return RunState("succeeded", ended)
    if status not in EXECUTION_FAILURES:
        return RunState("running")
    what = ": ".join(" ".join(str(execution[k]).split()) for k in ("error", "cause") if execution.get(k))
    if len(what) > CAUSE_CHARS:
        what = what[:CAUSE_CHARS - 3] + "..."
    at = f" at {when(float(stopped))}" if isinstance(stopped, (int, float)) else ""
    return RunState("failed", ended, f"its Step Functions execution ended {status}{at}" + (f": {what}" if what else ""))


def _first_heartbeat(driver: dict[str, Any] | None, created_at: float) -> dict[str, Any] | None:
    """Before the first ``_lease.json``, the run record's driver holds from the run's creation."""
    if not driver:
        return None
    timeout = driver.get("timeout")
    return {**driver, "refreshed_at": created_at, "expires_at": created_at + float(timeout) if timeout else None}


def _legacy(created_at: float, now: float, last_activity: float | None) -> RunState:
    latest = max(created_at, last_activity or 0.0)
    if now - latest <= LEGACY_GRACE_SECONDS:
        return RunState("running")
    return RunState("crashed", latest, "it has no final status and no lease (it was started by an mfc without "
                                       f"leases), and nothing happened in it since {when(latest)}")
