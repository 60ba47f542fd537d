"""Background processes of the sandbox: start detached, record in pid files, check, stop.

A pid file ``<state_dir>/<name>.pid`` is JSON: ``{"name", "pid", "port", "cmd", "log",
"started_at", "marker"}``. A pid is only trusted while the process lives, is not a zombie and (where
``/proc`` exists) its command line still contains the marker it was started with, so a pid
reused by an unrelated process is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mfc.exceptions import MfcError


@dataclass
class ProcInfo:
    """A process the sandbox started."""

    name: str
    pid: int
    port: int
    cmd: list[str]
    log: str
    started_at: float
    marker: str  # a command-line fragment that identifies this process (see is_alive)

    def alive(self) -> bool:
        return is_alive(self.pid, self.marker)


def pid_path(state_dir: str, name: str) -> str:
    return os.path.join(state_dir, f"{name}.pid")


def read_pid(state_dir: str, name: str) -> ProcInfo | None:
    """The recorded process ``name``, or None when no (readable) pid file exists."""
    try:
        with open(pid_path(state_dir, name)) as fh:
            return ProcInfo(**json.load(fh))
    except (OSError, ValueError, TypeError):
        return None


def write_pid(state_dir: str, info: ProcInfo) -> None:
    path = pid_path(state_dir, info.name)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(asdict(info), fh)
    os.replace(tmp, path)


def remove_pid(state_dir: str, name: str) -> None:
    try:
        os.unlink(pid_path(state_dir, name))
    except FileNotFoundError:
        pass


def _proc_state(pid: int) -> str | None:
    """The state letter from /proc/<pid>/stat ('Z' for a zombie), None without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def is_alive(pid: int, marker: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, where /proc tells, its command line holds ``marker``."""
    if pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    if _proc_state(pid) == "Z":
        return False
    if marker and os.path.exists(f"/proc/{pid}/cmdline"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                return marker.encode() in fh.read()
        except OSError:
            return False
    return True


_EXIT_CODES: dict[int, int] = {}  # our children that exited, as _reap collected them


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our (exited) child, so it leaves no zombie."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return
    if done:
        _EXIT_CODES[pid] = os.waitstatus_to_exitcode(status)


def spawn(name: str, cmd: list[str], port: int, log_path: str, marker: str,
          env: dict[str, str] | None = None) -> ProcInfo:
    """Start ``cmd`` detached (a new session, stdin from /dev/null, output appended to ``log_path``)."""
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    # The Popen object is dropped on purpose: the process must outlive this one.
    return ProcInfo(name=name, pid=proc.pid, port=port, cmd=cmd, log=log_path, started_at=time.time(),
                    marker=marker)


def await_healthy(info: ProcInfo, healthy: Callable[[], bool], timeout: float, what: str,
                  interval: float = 0.2) -> ProcInfo:
    """Wait until the just-spawned ``info`` answers ``healthy``; else stop it and raise an MfcError
    saying whether it exited (with its status) or did not answer in time, with its log's tail."""
    t0 = time.monotonic()
    # Our own unreaped child: its pid is its own until we reap it, so no marker check here (a child
    # that has not reached exec yet, on a loaded machine, would fail it and read as dead).
    if wait_until(lambda: healthy() or not is_alive(info.pid), timeout, interval) and is_alive(info.pid):
        return info
    waited = time.monotonic() - t0
    if is_alive(info.pid):  # reaps it (recording its status) when it has exited
        why = f"did not answer within {waited:.0f} s"
    else:  # the status is unknown when something else reaped it (subprocess's own cleanup)
        status = _EXIT_CODES.get(info.pid)
        why = "exited" + (f" with status {status}" if status is not None else "")
    # Our own child: its pid cannot have been reused, so it is stopped without the marker check
    # (which a child that has not reached exec yet would fail).
    stop(info.pid, None, grace=2.0)
    raise MfcError(f"{what} {why} (log {info.log}):\n{log_tail(info.log)}")


def stop(pid: int, marker: str | None = None, grace: float = 5.0) -> bool:
    """SIGTERM ``pid``, then SIGKILL after ``grace`` seconds. True when it ran and is now gone."""
    if not is_alive(pid, marker):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        if wait_until(lambda: not is_alive(pid), wait, interval=0.1):
            return True
    return not is_alive(pid)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``check`` until it returns True (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def log_tail(path: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ('' if unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
