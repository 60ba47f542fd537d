"""Local executors: each task an OS process.

``ForkExecutor`` (the default on Linux and macOS) forks tasks from a fork server that imported
the flow once; ``SpawnExecutor`` starts ``python -m mfc.runner.task`` per task, like a container
or Batch job does, for platforms without fork or for debugging (``MFC_LOCAL_EXECUTOR=spawn``).

Neither lets a task outlive the process that drives the run (see :mod:`mfc.runner.lifeline`):
the fork server and its tasks die with their parents, and spawned tasks with theirs, each task's
process group killed by the fork server or by the spawn executor's reaper. Tasks are submitted
from the orchestrator's thread, which lives as long as the run: the parent-death signal is tied
to the thread that started a process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from mfc.runner.executor import Executor, Handle, TaskExit
from mfc.runner.forkserver import start_fork_server
from mfc.runner.lifeline import PARENT_PID_ENV, Reaper, kill_group
from mfc.runner.taskspec import TaskSpec, spec_argument


class ForkExecutor(Executor):
    """Forks each task from a fork server holding the imported flow."""

    name = "local"

    def __init__(self, flow_cls: type, graph: Any) -> None:
        super().__init__()
        self.flow_cls = flow_cls
        self.graph = graph
        self._sock = None
        self._server_pid: int | None = None
        self._handles: dict[str, Handle] = {}
        self._lock = threading.Lock()
        self._dead: str | None = None  # why the server is gone, once it is
        self._closing = False

    def start(self) -> None:
        from mfc.runner import task as task_module

        flow_cls, graph = self.flow_cls, self.graph

        def run(spec: dict[str, Any]) -> int:
            return task_module.execute(TaskSpec.from_dict(spec), flow_cls, graph)

        self._server_pid, self._sock = start_fork_server(run)
        threading.Thread(target=self._read_events, name="mfc-forkserver", daemon=True).start()

    def _read_events(self) -> None:
        assert self._sock is not None
        try:
            with self._sock.makefile("rb") as stream:
                for line in stream:
                    self._event(json.loads(line))
        except (OSError, ValueError):
            pass  # a broken socket or a garbled event: the server is as good as gone
        finally:
            self._server_gone()

    def _event(self, event: dict[str, Any]) -> None:
        if event["ev"] == "started":
            with self._lock:
                handle = self._handles.get(event["key"])
            if handle is not None:
                handle.pid = event["pid"]
        elif event["ev"] == "exit":
            with self._lock:
                self._handles.pop(event["key"], None)
            self.events.put(TaskExit(event["key"], event["code"]))

    def _server_gone(self) -> None:
        """The event stream ended. Unless we closed it, the server died: kill what is left of its
        tasks (their subprocesses too) and end each of them with one summary naming the cause."""
        cause = "the local fork server was closed" if self._closing else self._cause()
        with self._lock:
            lost = list(self._handles.values())
            self._handles.clear()
            self._dead = self._dead or cause
        for handle in lost:
            if handle.pid:
                kill_group(handle.pid)
        summary = self._dead
        if lost:
            summary += "; tasks lost: " + ", ".join(f"{h.spec.step}/{h.spec.task_id}" for h in lost)
        for handle in lost:
            self.events.put(TaskExit(handle.key, -9, self._dead, summary))

    def _cause(self) -> str:
        """Why the server ended, from its exit status (it has closed its socket, so it is exiting)."""
        pid = self._server_pid
        how = "stopped"
        deadline = time.monotonic() + 2.0
        while pid and time.monotonic() < deadline:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                self._server_pid = None
                code = os.waitstatus_to_exitcode(status)
                how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
                break
            time.sleep(0.01)
        return f"the fork server (pid {pid}) died: {how}"

    def _send(self, message: dict[str, Any]) -> None:
        assert self._sock is not None
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        key = f"{spec.step}/{spec.task_id}/{spec.attempt}"
        handle = Handle(key, spec, stdout, stderr)
        with self._lock:
            dead = self._dead
            if dead is None:
                self._handles[key] = handle
        if dead is None:
            try:
                self._send({"op": "run", "key": key, "spec": json.loads(spec.to_json()),
                            "stdout": stdout, "stderr": stderr})
                return handle
            except OSError:
                with self._lock:
                    if self._handles.pop(key, None) is None:
                        return handle  # the reader saw the server go and ended this task already
                    dead = self._dead or "the fork server stopped taking tasks"
        self.events.put(TaskExit(key, -9, dead, f"{dead}; task not started: {spec.step}/{spec.task_id}"))
        return handle

    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        try:
            self._send({"op": "kill", "key": handle.key, "grace": grace})
        except OSError:
            pass  # the server is gone; the reader ends the task (it killed its group)

    def close(self) -> None:
        self._closing = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # makefile() readers keep the fd open past close()
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if self._server_pid:
            try:
                os.waitpid(self._server_pid, 0)
            except ChildProcessError:
                pass
            self._server_pid = None


class SpawnExecutor(Executor):
    """Starts a fresh interpreter per task (``python -m mfc.runner.task``)."""

    name = "local-spawn"

    def __init__(self) -> None:
        super().__init__()
        self._procs: dict[str, subprocess.Popen] = {}
        self._timers: list[threading.Timer] = []
        self._reaper: Reaper | None = None

    def start(self) -> None:
        # Each task dies with this process twice over: its parent-death signal kills it, and the
        # reaper kills its whole process group (what the task started, too) when we are gone.
        self._reaper = Reaper()

    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        key = f"{spec.step}/{spec.task_id}/{spec.attempt}"
        handle = Handle(key, spec, stdout, stderr)
        env = {**os.environ, **spec.environment, PARENT_PID_ENV: str(os.getpid())}
        with open(stdout, "ab") as out, open(stderr, "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mfc.runner.task", "--spec", spec_argument(spec)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        handle.pid = proc.pid
        if self._reaper is not None:
            self._reaper.watch(proc.pid)
        self._procs[key] = proc
        threading.Thread(target=self._wait, args=(key, proc), daemon=True).start()
        return handle

    def _wait(self, key: str, proc: subprocess.Popen) -> None:
        code = proc.wait()
        kill_group(proc.pid)  # whatever the task left running in its group
        if self._reaper is not None:
            self._reaper.forget(proc.pid)
        self._procs.pop(key, None)
        self.events.put(TaskExit(key, code))

    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        proc = self._procs.get(handle.key)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM if grace else signal.SIGKILL)
        except ProcessLookupError:
            return
        if grace:
            timer = threading.Timer(grace, self.kill, args=(handle, 0.0))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for proc in list(self._procs.values()):
            kill_group(proc.pid)
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
