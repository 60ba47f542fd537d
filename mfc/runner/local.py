"""Local executors: each task an OS process.

``ForkExecutor`` (the default on Linux and macOS) forks tasks from a fork server that imported
the flow once; ``SpawnExecutor`` starts ``python -m mfc.runner.task`` per task, like a container
or Batch job does, for platforms without fork or for debugging (``MFC_LOCAL_EXECUTOR=spawn``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

from mfc.runner.executor import Executor, Handle, TaskExit
from mfc.runner.forkserver import start_fork_server
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

    def start(self) -> None:
        from mfc.runner import task as task_module

        flow_cls, graph = self.flow_cls, self.graph

        def run(spec: dict[str, Any]) -> int:
            return task_module.execute(TaskSpec.from_dict(spec), flow_cls, graph)

        self._server_pid, self._sock = start_fork_server(run)
        threading.Thread(target=self._read_events, name="mfc-forkserver", daemon=True).start()

    def _read_events(self) -> None:
        assert self._sock is not None
        with self._sock.makefile("rb") as stream:
            for line in stream:
                event = json.loads(line)
                if event["ev"] == "started":
                    with self._lock:
                        handle = self._handles.get(event["key"])
                    if handle is not None:
                        handle.pid = event["pid"]
                elif event["ev"] == "exit":
                    with self._lock:
                        self._handles.pop(event["key"], None)
                    self.events.put(TaskExit(event["key"], event["code"]))
        with self._lock:
            lost = list(self._handles)
            self._handles.clear()
        for key in lost:
            self.events.put(TaskExit(key, -9, "the local fork server stopped"))

    def _send(self, message: dict[str, Any]) -> None:
        assert self._sock is not None
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        key = f"{spec.step}/{spec.task_id}/{spec.attempt}"
        handle = Handle(key, spec, stdout, stderr)
        with self._lock:
            self._handles[key] = handle
        self._send({"op": "run", "key": key, "spec": json.loads(spec.to_json()), "stdout": stdout, "stderr": stderr})
        return handle

    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        self._send({"op": "kill", "key": handle.key, "grace": grace})

    def close(self) -> None:
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

    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        key = f"{spec.step}/{spec.task_id}/{spec.attempt}"
        handle = Handle(key, spec, stdout, stderr)
        env = {**os.environ, **spec.environment}
        with open(stdout, "ab") as out, open(stderr, "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mfc.runner.task", "--spec", spec_argument(spec)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        handle.pid = proc.pid
        self._procs[key] = proc
        threading.Thread(target=self._wait, args=(key, proc), daemon=True).start()
        return handle

    def _wait(self, key: str, proc: subprocess.Popen) -> None:
        code = proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever the task left running in its group
        except (ProcessLookupError, PermissionError):
            pass
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
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
