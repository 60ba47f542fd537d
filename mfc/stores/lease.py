"""The lease of whoever drives a run, and what a reader can find out about that process.

The process that drives a run (the orchestrator of ``mfc run``/``mfc resume``) describes itself
in the run record (``driver``: host, pid, the process's start time, its pid namespace and boot,
the heartbeat interval and timeout) and then refreshes a heartbeat record,
``<Flow>/<run>/_lease.json``, every ``interval`` seconds: the same fields plus ``refreshed_at``
and ``expires_at``. A reader on the same machine (same host name, boot and pid namespace) can
also ask the kernel whether that pid still runs and started when the lease says it did.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Literal

ProcessFact = Literal["alive", "gone", "reused"]


@dataclass(frozen=True)
class HostIdentity:
    """Where a process runs: two processes with equal identities can see each other's pids."""

    host: str
    boot_id: str
    pid_ns: str


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def here() -> HostIdentity:
    """This process's host name, boot id and pid namespace (the last two empty without /proc)."""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = ""
    return HostIdentity(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), pid_ns)


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, from /proc/<pid>/stat), None if there is
    no such live process; "" where /proc is not available but the pid exists."""
    if not os.path.isdir("/proc/self"):
        return _exists_without_proc(pid)
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # a zombie has ended; only its exit status is left
        return None
    return fields[19]


def _exists_without_proc(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


def driver_record(interval: float, timeout: float | None, pid: int | None = None) -> dict[str, Any]:
    """What the driving process writes about itself into the run record (``driver``)."""
    pid = os.getpid() if pid is None else pid
    me = here()
    return {"host": me.host, "boot_id": me.boot_id, "pid_ns": me.pid_ns, "pid": pid, "pid_start": process_start(pid),
            "interval": interval, "timeout": timeout if interval > 0 else None}


def lease_record(driver: dict[str, Any], now: float | None = None, beat: int = 0) -> dict[str, Any]:
    """One heartbeat: the driver's fields, when it was written and until when it holds."""
    now = time.time() if now is None else now
    timeout = driver.get("timeout")
    return {**driver, "beat": beat, "refreshed_at": round(now, 3),
            "expires_at": round(now + timeout, 3) if timeout else None}


def probe(driver: dict[str, Any], me: HostIdentity | None = None) -> ProcessFact | None:
    """Whether the process named by a lease or driver record still runs, as seen from here:
    None when it runs on another machine or pid namespace (only its heartbeat can tell)."""
    me = here() if me is None else me
    pid = driver.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    if (driver.get("host"), driver.get("boot_id") or "", driver.get("pid_ns") or "") != (me.host, me.boot_id, me.pid_ns):
        return None
    start = process_start(pid)
    if start is None:
        return "gone"
    recorded = driver.get("pid_start")
    if recorded and start and start != recorded:
        return "reused"
    return "alive"
