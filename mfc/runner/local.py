"""Local executors: each task an OS process.

``ForkExecutor`` (the default on Linux and macOS) forks tasks from a fork server that imported
the flow once, before any task: every task runs the code as it was when the run started (the
flow file and the modules it imported then), whatever is edited on disk meanwhile.
``SpawnExecutor`` starts ``python -m mfc.runner.task`` per task, like a container or Batch job
does, for platforms without fork or for debugging (``MFC_LOCAL_EXECUTOR=spawn``); its tasks run
the run's code package (unpacked once into a local cache, see :mod:`mfc.runner.bootstrap`), so
edits made mid-run do not leak in there either.

Both report a task's start (:class:`TaskStarted`) when its process exists: ``@timeout`` counts
from there.

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
from typing import TYPE_CHECKING, Any

from mfc.graph import FlowGraph
from mfc.runner.executor import Executor, Handle, TaskExit, TaskStarted
from mfc.runner.forkserver import start_fork_server
from mfc.runner.lifeline import PARENT_PID_ENV, Reaper, kill_group, wait_gone
from mfc.runner.taskspec import TaskSpec, spec_argument

if TYPE_CHECKING:
    from mfc.runner.envclient import EnvRunServer


class ForkExecutor(Executor):
    """Forks each task from a fork server holding the imported flow."""

    name = "local"
    reports_start = True

    def __init__(self, flow_cls: type, graph: FlowGraph, python: str | None = None) -> None:
        super().__init__()
        self.python = python  # the interpreter of the flow's environment; None: fork this process
        self.flow_cls = flow_cls
        self.graph = graph
        self._sock: socket.socket | None = None
        self._server_pid: int | None = None
        self._server_is_child = True  # else a run server forked by the env's daemon
        self._env_server: EnvRunServer | None = None  # the env's run server, asked for by prestart()
        self._handles: dict[str, Handle] = {}
        self._lock = threading.Lock()
        self._dead: str | None = None  # why the server is gone, once it is
        self._closing = False

    def prestart(self) -> None:
        """Ask for the environment's fork server now (the env's daemon forks one, else one is
        started: a subprocess, threads may already run); it imports the flow meanwhile."""
        if self.python is not None and self._sock is None and self._env_server is None:
            from mfc.runner.envclient import EnvRunServer

            self._env_server = EnvRunServer(self.python, self.graph.file, self.graph.name)

    def start(self) -> None:
        from mfc.decorators import card_decorators
        from mfc.runner import task as task_module

        flow_cls, graph = self.flow_cls, self.graph
        if self.python is not None:
            self.prestart()
            assert self._env_server is not None
            self._server_pid, self._sock, self._server_is_child = self._env_server.take()
            self._env_server = None
            threading.Thread(target=self._read_events, name="mfc-forkserver", daemon=True).start()
            return
        if any(card_decorators(getattr(flow_cls, name)) for name in graph.nodes):
            from mfc.cards.render import preload

            preload()  # imported once here, the forked tasks render their cards without importing

        def run(spec: dict[str, Any]) -> int:
            return task_module.execute(TaskSpec.from_dict(spec), flow_cls, graph)

        self._server_pid, self._sock = start_fork_server(run)
        threading.Thread(target=self._read_events, name="mfc-forkserver", daemon=True).start()

    def _read_events(self) -> None:
        assert self._sock is not None
        broken: str | None = None
        try:
            with self._sock.makefile("rb") as stream:
                for line in stream:
                    self._event(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - a reset socket, a garbled event: every task must still end
            broken = f"{type(exc).__name__}: {exc}"
        finally:
            self._server_gone(broken)

    def _event(self, event: dict[str, Any]) -> None:
        if event["ev"] == "started":
            with self._lock:
                handle = self._handles.get(event["key"])
            if handle is not None:
                handle.pid = event["pid"]
                self.events.put(TaskStarted(event["key"], float(event.get("at") or time.time())))
        elif event["ev"] == "exit":
            with self._lock:
                self._handles.pop(event["key"], None)
            self.events.put(TaskExit(event["key"], event["code"]))

    def _server_gone(self, broken: str | None = None) -> None:
        """The event stream ended (``broken``: with that error). Unless we closed it, the server
        died or can no longer be heard: kill what is left of it and of its tasks (their
        subprocesses too) and end each task with one summary naming the cause."""
        cause = "the local fork server was closed" if self._closing else self._cause(broken)
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

    def _cause(self, broken: str | None) -> str:
        """Why the stream ended: the server's exit status when it has exited (a closed socket
        means it is exiting; a reset one often that it was killed). A server still running
        behind a broken stream can neither be told to run nor to stop tasks: it is killed, and
        its tasks with it (they die with their parent)."""
        pid = self._server_pid
        how = self._reap_server(0.3 if broken else 2.0)
        if how is not None or broken is None:
            return f"the fork server (pid {pid}) died: {how or 'stopped'}"
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)  # its own process only: it shares our process group
            except ProcessLookupError:
                pass
            self._reap_server(5.0)
        return f"lost the connection to the fork server{f' (pid {pid})' if pid else ''}: {broken}; it was stopped"

    def _reap_server(self, wait: float) -> str | None:
        """How the server ended, once it has (waiting up to ``wait`` seconds), else None."""
        pid = self._server_pid
        deadline = time.monotonic() + wait
        if pid and not self._server_is_child:  # forked by the env's daemon, which reaps it
            if not wait_gone(pid, wait):
                return None
            self._server_pid = None
            return "exited"
        while pid:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return "exited"
            if done:
                self._server_pid = None
                code = os.waitstatus_to_exitcode(status)
                return f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return None

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
        if self._env_server is not None:  # asked for, never taken: the run stopped before its tasks
            self._env_server.close()
            self._env_server = None
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # makefile() readers keep the fd open past close()
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if self._server_pid and not self._server_is_child:
            self._reap_server(5.0)  # it kills what is left of its tasks, then exits
        elif self._server_pid:
            try:
                os.waitpid(self._server_pid, 0)
            except ChildProcessError:
                pass
            self._server_pid = None


class SpawnExecutor(Executor):
    """Starts a fresh interpreter per task (``python -m mfc.runner.task``)."""

    name = "local-spawn"
    reports_start = True

    def __init__(self, python: str | None = None) -> None:
        super().__init__()
        self.python = python or sys.executable
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
                [self.python, "-m", "mfc.runner.task", "--spec", spec_argument(spec)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        handle.pid = proc.pid
        self.events.put(TaskStarted(key, time.time()))
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
