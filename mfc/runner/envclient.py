"""The lead's side of a run in an environment: get a fork server running the env's interpreter.

The env's daemon (:mod:`mfc.runner.envdaemon`) has mfc imported already, so a run asks it for a
run server (a fork, milliseconds) instead of starting an interpreter that imports mfc (the
larger part of a small run). Daemons are found by an abstract Unix socket address, per user and
per *server key*: the env's interpreter, its ``.ready`` marker, the mfc packages it can import
and the variables an interpreter reads as it starts (``PYTHON*``, ``LD_*``, locale, ``TZ``). A
rebuilt env or another mfc gets a fresh daemon; so does an edited mfc, as a daemon that imported
a module since changed on disk takes no more runs. Whatever goes wrong with a daemon (none on
this platform, ``MFC_ENV_SERVER_IDLE=0``, a race with one exiting, a failure to start), the run
starts a server of its own, as without a daemon.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from mfc.exceptions import MfcError

IDLE_ENV = "MFC_ENV_SERVER_IDLE"
DEFAULT_IDLE = 900.0
HELLO_TIMEOUT = 120.0
# Read once, when an interpreter starts (sys.path, hashing, the dynamic loader, locale, time
# zone): a run setting them differently needs a daemon started with them.
STARTUP_VARIABLES = ("PYTHON", "LD_", "LC_", "LANG", "TZ")


def idle_seconds() -> float:
    """How long an env's daemon waits for the next run (``$MFC_ENV_SERVER_IDLE``; 0: no daemon)."""
    value = os.environ.get(IDLE_ENV, "").strip()
    if not value:
        return DEFAULT_IDLE
    try:
        seconds = float(value)
    except ValueError:
        raise MfcError(f"{IDLE_ENV}={value!r}: expected a number of seconds (0: no env daemon)") from None
    if seconds < 0:
        raise MfcError(f"{IDLE_ENV}={value!r}: expected a number of seconds (0: no env daemon)")
    return seconds


def server_key(python: str) -> str:
    """What a daemon serving runs for ``python``'s env must have been started with."""
    import mfc

    env = Path(python).parent.parent
    ready = os.stat(env / ".ready")
    digest = hashlib.sha256(f"{os.path.realpath(python)}\0{ready.st_ino}\0{ready.st_mtime_ns}\0".encode())
    packages = {os.path.realpath(env / "mfc-link" / "mfc"), os.path.realpath(Path(mfc.__file__).parent)}
    for package in sorted(packages):  # their contents: the daemon checks what it imported, see envdaemon
        digest.update(f"{package}\0".encode())
    for name in sorted(n for n in os.environ if n.startswith(STARTUP_VARIABLES)):
        digest.update(f"{name}={os.environ[name]}\0".encode())
    return digest.hexdigest()


def daemon_address(key: str) -> str:
    """The daemon's abstract socket address (no file: it vanishes with the daemon)."""
    return f"\0mfc-envd-{os.getuid()}-{key[:40]}"


def _connect(address: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    if struct.unpack("3i", creds)[1] != os.getuid():
        sock.close()  # another user's socket under our name: never hand it our environment
        return None
    return sock


def _spawn(python: str, address: str, idle: float) -> None:
    """Start the daemon on ``address``: bound here, so of two runs racing, one starts it."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address)
    except OSError:
        listener.close()
        return  # another run has just started one
    try:
        listener.listen(64)
        fd = listener.fileno()
        env = Path(python).parent.parent
        subprocess.Popen(
            [python, "-m", "mfc.runner.envdaemon", "--fd", str(fd), "--idle", str(idle), "--key", address[1:]],
            pass_fds=(fd,), cwd=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        ).returncode = 0  # it outlives this run: never waited for
    finally:
        listener.close()


def _read_line(sock: socket.socket, timeout: float) -> bytes:
    """One line, read byte by byte so that nothing after it is consumed ("" at end of stream)."""
    sock.settimeout(timeout)
    line = b""
    try:
        while not line.endswith(b"\n"):
            byte = sock.recv(1)
            if not byte:
                return b""
            line += byte
    finally:
        sock.settimeout(None)
    return line


class EnvRunServer:
    """This run's fork server in the env of ``python``: asked for at construction (the daemon
    forks it and it imports the flow while the lead records the run), taken by :meth:`take`."""

    def __init__(self, python: str, flow_file: str, flow_name: str) -> None:
        self.python, self.flow_file, self.flow_name = python, flow_file, flow_name
        self._sock: socket.socket | None = None
        idle = idle_seconds()
        if idle > 0 and sys.platform.startswith("linux"):
            try:
                self._sock = self._ask_daemon(idle)
            except OSError:
                self._sock = None

    def _ask_daemon(self, idle: float) -> socket.socket | None:
        address = daemon_address(server_key(self.python))
        sock = _connect(address)
        if sock is None:
            _spawn(self.python, address, idle)
            sock = _connect(address)
        if sock is None:
            return None
        umask = os.umask(0o022)
        os.umask(umask)
        header = json.dumps({"flow_file": os.path.abspath(self.flow_file), "flow_name": self.flow_name,
                             "lead": os.getpid(), "cwd": os.getcwd(), "environ": dict(os.environ),
                             "umask": umask}).encode() + b"\n"
        try:
            sent = socket.send_fds(sock, [header], [1, 2])  # what a server started here would inherit
            sock.sendall(header[sent:])
        except OSError:
            sock.close()
            return None
        return sock

    def close(self) -> None:
        """Let the daemon's run server go (it exits, as it does when a run ends)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def take(self) -> tuple[int, socket.socket, bool]:
        """(pid, socket, whether the server is this process's child): the daemon's run server
        once it says hello, else a server started now for this run alone."""
        sock, self._sock = self._sock, None
        if sock is not None:
            started = time.monotonic()
            try:
                return int(json.loads(_read_line(sock, HELLO_TIMEOUT))["pid"]), sock, False
            except (OSError, ValueError, KeyError, TypeError):
                sock.close()  # no hello: the daemon declined (stale), exited meanwhile or is stuck
            if time.monotonic() - started > HELLO_TIMEOUT / 2:
                from mfc.exceptions import warn

                warn("the environment's daemon did not answer; starting a server for this run")
        from mfc.runner.envserver import start_env_fork_server

        pid, sock = start_env_fork_server(self.python, self.flow_file, self.flow_name)
        return pid, sock, True
