"""Tasks never outlive the process that drives their run.

Two mechanisms, because neither is enough alone:

- Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): the kernel signals a process the
  moment its parent dies, whatever the process is doing. It fires on the death of the parent
  *thread* that forked the process, so it is only set in processes forked by a thread that lives
  as long as its parent process (the main thread of ``mfc run``, the single-threaded fork server).
- A lifeline pipe, which works wherever there are pipes: the parent keeps the only write end; a
  watcher holding the read end sees end-of-file when the parent is gone, however it died, and
  kills what it watches over (whole process groups, so a task's own subprocesses die too).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "MFC_PARENT_PID"

@functools.cache
def _prctl() -> ctypes.CDLL | None:
    """The libc that has ``prctl`` (looked up once), None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # libc is loaded already; find_library would fork
        libc.prctl  # noqa: B018 - raises AttributeError where there is none
    except (OSError, AttributeError):
        return None
    return libc


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread dies.
    Returns False where that is not available (not Linux, no prctl)."""
    libc = _prctl()
    if libc is None:
        return False
    return libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) == 0


def parent_death_preexec(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` giving a subprocess the parent-death signal ``sig`` (None where there is
    none). libc is looked up here, in the parent: the child only makes the call."""
    libc = _prctl()
    if libc is None:
        return None
    prctl = libc.prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0)

    return preexec


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Set the parent-death signal, then close the race where the parent died before it was set:
    if this process has already been re-parented, act as the signal would have."""
    set_parent_death_signal(sig)
    if os.getppid() != parent_pid and not alive(parent_pid):  # (a wrapper in between is no death)
        os.kill(os.getpid(), sig)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return not os.path.isdir("/proc/self") and _signalable(pid)
    except (OSError, IndexError):
        return _signalable(pid)


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` (not necessarily a child) to end; whether it has."""
    import time

    try:
        pidfd = os.pidfd_open(pid)  # readable once the process has ended: no polling
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        import select

        try:
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        return not alive(pid)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
    return True


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def die_with_parent_from_env() -> None:
    """In a task started by the spawn executor (which names itself in ``MFC_PARENT_PID``)."""
    value = os.environ.pop(PARENT_PID_ENV, "")
    if value.isdigit():
        die_with_parent(int(value))


class Reaper:
    """A small watchdog process for tasks started as separate interpreters: it is told each
    task's process group, and kills every group it still knows when its lifeline (this
    process's end of a pipe) closes, which is when this process exits or is killed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # tasks end on their own threads
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mfc.runner.lifeline", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True,
        )

    def _tell(self, line: str) -> None:
        assert self._proc.stdin is not None
        with self._lock:
            try:
                self._proc.stdin.write(line.encode() + b"\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass  # the reaper is gone; the tasks still have their parent-death signal

    def watch(self, pgid: int) -> None:
        """Kill this process group if the parent dies."""
        self._tell(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        """The group has ended; stop watching it."""
        self._tell(f"-{pgid}")

    def close(self) -> None:
        """Stop the reaper, killing whatever groups it still watches."""
        if self._proc.stdin is not None:
            with self._lock:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process group that may be gone already."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(parent_pid: int) -> None:
    """The reaper's loop: track groups from stdin; at end of file (or SIGTERM), kill them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _close_stdin)
    groups: set[int] = set()
    try:
        die_with_parent(parent_pid, signal.SIGTERM)
        for line in sys.stdin.buffer:
            text = line.strip().decode()
            if text[:1] == "+" and text[1:].isdigit():
                groups.add(int(text[1:]))
            elif text[:1] == "-" and text[1:].isdigit():
                groups.discard(int(text[1:]))
    except (OSError, ValueError):
        pass  # stdin closed under the loop by SIGTERM
    for pgid in groups:
        kill_group(pgid)


def _close_stdin(signum: int, frame: object) -> None:
    # Never raise here: the signal may come while the groups are being killed (the parent's death
    # brings both it and end-of-file); closing stdin ends a read in progress, and is all it does.
    try:
        os.close(0)
    except OSError:
        pass


if __name__ == "__main__":
    _reap(int(sys.argv[1]))
