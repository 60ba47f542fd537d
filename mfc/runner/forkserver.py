"""A fork server: a single-threaded process that has imported the flow once and forks a fresh
child per task, so a task starts in milliseconds instead of paying for a new interpreter and
the flow's imports. Each child gets its own process group and log files; a crash, ``os._exit``
or a memory leak ends only that child.

Protocol (JSON lines over a socketpair):
  lead -> server  {"op": "run", "key": k, "spec": {...}, "stdout": path, "stderr": path}
                  {"op": "kill", "key": k, "grace": seconds}
  server -> lead  {"ev": "started", "key": k, "pid": pid, "at": epoch seconds}
                  {"ev": "exit", "key": k, "code": exit code, negative for a signal}
"""

from __future__ import annotations

import io
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from mfc.runner.lifeline import die_with_parent

TaskFunction = Callable[[dict[str, Any]], int]


def start_fork_server(task_fn: TaskFunction) -> tuple[int, socket.socket]:
    """Fork the server now (the caller must not have started threads yet); returns (pid, socket)."""
    lead, server = socket.socketpair()
    lead_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        lead.close()
        code = 0
        try:
            serve(server, task_fn, lead_pid)
        except BaseException:  # noqa: BLE001 - the server must never return into the caller's code
            code = 1
        os._exit(code)
    server.close()
    return pid, lead


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _run_child(message: dict[str, Any], task_fn: TaskFunction, server_pid: int) -> None:
    """In the forked child: isolate, redirect output, run the task, exit without cleanup."""
    code = 1
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        die_with_parent(server_pid)  # a task never outlives the server that forked it
        signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd, path in ((1, message["stdout"]), (2, message["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, fd)
            os.close(out)
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(line_buffering=True)
        code = task_fn(message["spec"])
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(sock: socket.socket, task_fn: TaskFunction, lead_pid: int) -> None:
    """Serve until the lead closes its end of the socket or dies; either way every task's
    process group is killed on the way out."""
    children: dict[int, str] = {}
    try:
        _serve_until_closed(sock, task_fn, lead_pid, children)
    finally:
        # The lead's death is seen twice (socket and SIGHUP): the second must not cut this short.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _kill_all(children)


def _serve_until_closed(sock: socket.socket, task_fn: TaskFunction, lead_pid: int, children: dict[int, str]) -> None:
    # The lead decides what Ctrl-C and SIGTERM stop. Its death is seen twice: the socket closes,
    # and (on Linux) the kernel sends SIGHUP, which ends the loop wherever it is.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, _lead_died)
    die_with_parent(lead_pid, signal.SIGHUP)
    server_pid = os.getpid()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "control")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    by_key: dict[str, int] = {}
    hard_kill_at: dict[int, float] = {}
    buffer = b""
    while True:
        timeout = max(0.0, min(hard_kill_at.values()) - time.monotonic()) if hard_kill_at else None
        for key, _ in selector.select(timeout):
            if key.data == "child":
                os.read(wake_r, 4096)
                continue
            data = sock.recv(65536)
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if message["op"] == "run":
                    pid = os.fork()
                    if pid == 0:
                        selector.close()
                        sock.close()
                        _run_child(message, task_fn, server_pid)
                    try:
                        os.setpgid(pid, pid)
                    except OSError:
                        pass  # the child already set it, or has already exited
                    children[pid] = message["key"]
                    by_key[message["key"]] = pid
                    _send(sock, {"ev": "started", "key": message["key"], "pid": pid, "at": time.time()})
                elif message["op"] == "kill":
                    victim = by_key.get(message["key"])
                    if victim is not None:
                        _signal_group(victim, signal.SIGTERM if message.get("grace") else signal.SIGKILL)
                        if message.get("grace"):
                            hard_kill_at[victim] = time.monotonic() + float(message["grace"])
        now = time.monotonic()
        for pid, when in list(hard_kill_at.items()):
            if when <= now:
                _signal_group(pid, signal.SIGKILL)
                del hard_kill_at[pid]
        _reap(sock, children, by_key, hard_kill_at)


def _reap(sock: socket.socket, children: dict[int, str], by_key: dict[str, int], hard_kill_at: dict[int, float]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        key = children.pop(pid, None)
        hard_kill_at.pop(pid, None)
        if key is None:
            continue
        by_key.pop(key, None)
        # Stop anything the task left running in its process group.
        _signal_group(pid, signal.SIGKILL)
        _send(sock, {"ev": "exit", "key": key, "code": os.waitstatus_to_exitcode(status)})


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _lead_died(signum: int, frame: Any) -> None:
    raise SystemExit(1)


def _kill_all(children: dict[int, str]) -> None:
    for pid in children:
        _signal_group(pid, signal.SIGKILL)
