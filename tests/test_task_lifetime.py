"""Tasks never outlive the ``mfc run`` that drives them, and the death of the fork server fails
the run with one summary naming it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import (
    assert_no_traceback,
    clean_env,
    describe,
    metadata,
    mfc_executable,
    process_alive,
    run_flow,
    run_status,
    task_records,
    write_flow,
)

# Each foreach task writes its pid and the pid of a subprocess it started (in its own process
# group) into PIDS, then sleeps: after the orchestrator dies, none of them may survive.
LINGERING = '''
import os, subprocess, sys, time
from mfc import FlowSpec, step

PIDS = {pids!r}

class LingerFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(os.path.join(PIDS, "task-%d" % self.input), "w") as fh:
            fh.write("%d %d %d" % (os.getpid(), child.pid, os.getppid()))
        {action}
        time.sleep(120)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _wait_for_pids(directory: Path, count: int, proc: subprocess.Popen, timeout: float = 30) -> list[list[int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(directory.glob("task-*"))
        if len(files) == count and all(f.read_text().count(" ") == 2 for f in files):
            return [[int(p) for p in f.read_text().split()] for f in files]
        assert proc.poll() is None, f"mfc run ended early with {proc.returncode}"
        time.sleep(0.05)
    raise AssertionError(f"the tasks did not start: {list(directory.iterdir())}")


def _assert_all_gone(pids: set[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    alive = pids
    while time.monotonic() < deadline:
        alive = {p for p in pids if process_alive(p)}
        if not alive:
            return
        time.sleep(0.05)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"processes outlived the run: {sorted(alive)}")


@pytest.mark.parametrize("executor", ["fork", "spawn"])
def test_kill_9_of_mfc_run_leaves_no_task_process(root, tmp_path, executor):
    pids = tmp_path / "pids"
    pids.mkdir()
    flow = write_flow(tmp_path, LINGERING.format(pids=str(pids), action="pass"))
    env = clean_env(root, {"MFC_LOCAL_EXECUTOR": executor})
    proc = subprocess.Popen([mfc_executable(), "run", flow, "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = _wait_for_pids(pids, 3, proc)
        helpers = set(_children(proc.pid))  # the fork server, or the spawn executor's reaper
        assert helpers
    finally:
        proc.kill()
        proc.wait()
    everything = {pid for row in started for pid in row[:2]} | helpers
    if executor == "fork":
        assert {row[2] for row in started} <= helpers  # the tasks' parent is the fork server
    _assert_all_gone(everything)


def test_tasks_die_when_the_fork_server_dies_with_the_orchestrator(root, tmp_path):
    """SIGKILL to the process group of ``mfc run`` kills the fork server too, before it can stop
    anything: the tasks (each in its own group) still die, by their parent-death signal."""
    pids = tmp_path / "pids"
    pids.mkdir()
    flow = write_flow(tmp_path, LINGERING.format(pids=str(pids), action="pass"))
    proc = subprocess.Popen([mfc_executable(), "run", flow, "--quiet"], env=clean_env(root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        started = _wait_for_pids(pids, 3, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    tasks = {row[0] for row in started}
    try:
        _assert_all_gone(tasks | {row[2] for row in started})
    finally:  # their own subprocesses have nobody left to stop them
        for row in started:
            if process_alive(row[1]):
                os.kill(row[1], signal.SIGKILL)


def test_a_task_that_kills_the_fork_server_fails_the_run_with_one_summary(root, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    action = ('if self.input == 0:\n'
              '            while len(os.listdir(PIDS)) < 3: time.sleep(0.02)\n'
              '            os.kill(os.getppid(), 9)')
    flow = write_flow(tmp_path, LINGERING.format(pids=str(pids), action=action))
    try:
        proc, run_id = run_flow(root, flow, expect=None)
        started = [[int(p) for p in f.read_text().split()] for f in pids.glob("task-*")]
        _assert_all_gone({pid for row in started for pid in row[:2]})
    finally:
        for f in pids.glob("task-*"):
            for pid in f.read_text().split()[:2]:
                if process_alive(int(pid)):
                    os.kill(int(pid), signal.SIGKILL)
    assert proc.returncode == 1, describe(proc)
    assert_no_traceback(proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, describe(proc)
    assert lines[0].startswith("error: the fork server (pid "), lines
    assert "died: killed by SIGKILL; tasks lost: work/work-0, work/work-1, work/work-2" in lines[0]
    assert "BrokenPipe" not in proc.stdout + proc.stderr
    records = task_records(root, "LingerFlow", run_id, "work")
    assert len(records) == 3
    for record in records:  # each lost task has one consistent record naming the cause
        assert record["status"] == "failed" and record["died"], record
        assert record["exception"]["message"].startswith("the fork server (pid "), record
    assert run_status(root, "LingerFlow", run_id) == "failed"


def test_a_broken_event_stream_reports_every_lost_task():
    """The fork executor's event reader, fed a garbled line, ends every task it knew of instead of
    dying silently (which left the orchestrator waiting forever)."""
    from mfc.runner.executor import Handle, TaskStarted
    from mfc.runner.local import ForkExecutor
    from mfc.runner.taskspec import TaskSpec

    executor = ForkExecutor(None, None)
    lead, server = socket.socketpair()
    executor._sock = lead
    for task_id in ("1", "2"):
        spec = TaskSpec(flow_file="f.py", flow_name="F", step="s", run_id="1", task_id=task_id, datastore_root="/x", inputs=[])
        executor._handles[f"s/{task_id}/0"] = Handle(f"s/{task_id}/0", spec, "out", "err")
    server.sendall(b'{"ev": "started", "key": "s/1/0", "pid": 0}\nnot json\n')
    executor._read_events()
    started = executor.events.get(timeout=1)
    assert isinstance(started, TaskStarted) and started.key == "s/1/0"
    ends = [executor.events.get(timeout=1) for _ in range(2)]
    assert sorted(e.key for e in ends) == ["s/1/0", "s/2/0"]
    assert all(e.executor_failure and "tasks lost: s/1, s/2" in e.executor_failure for e in ends)
    assert ends[0].executor_failure.startswith("lost the connection to the fork server: JSONDecodeError")
    # a task submitted after that ends at once, with the same cause, instead of raising BrokenPipeError
    spec = TaskSpec(flow_file="f.py", flow_name="F", step="s", run_id="1", task_id="3", datastore_root="/x", inputs=[])
    executor.submit(spec, "out", "err")
    late = executor.events.get(timeout=1)
    assert late.key == "s/3/0" and late.executor_failure
    server.close()
    lead.close()


def test_the_parent_death_signal_is_set_and_a_dead_parent_is_noticed(tmp_path):
    """A process whose parent died before it could ask for the signal kills itself at once."""
    from mfc.runner.lifeline import set_parent_death_signal

    assert set_parent_death_signal(0)  # Linux: prctl is there (0 clears it again)
    code = ("import os, sys; from mfc.runner.lifeline import die_with_parent; "
            "die_with_parent(4194305); print('survived')")  # above any pid_max: never alive
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == -signal.SIGKILL and "survived" not in done.stdout


def test_a_parent_that_died_before_the_signal_was_set_is_noticed_even_as_a_zombie(tmp_path):
    """The race closed by ``die_with_parent``: the parent exits (and is not reaped yet) before
    its child asks for the signal; the child must still die at once."""
    out = tmp_path / "out"
    child = ("import os, sys, time; from mfc.runner.lifeline import die_with_parent; "
             "parent = int(sys.argv[1]); time.sleep(0.5); die_with_parent(parent); print('survived', flush=True)")
    parent = f"import os, subprocess, sys; subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())], stdout=open({str(out)!r}, 'w'))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", parent], env=env)
    try:
        time.sleep(0.2)
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.02)  # exited, not reaped: a zombie while its child starts
        time.sleep(1.5)
        assert out.read_text() == ""
    finally:
        proc.wait()


SLEEPERS = '''
import time
from mfc import FlowSpec, step

class ResetFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(120)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


class _ResetStream:
    """The fork server's event stream, reset by its peer (``ECONNRESET``) once ``after`` tasks
    of step ``step`` have started; records the pids of the tasks it saw start."""

    def __init__(self, stream, step: str, after: int) -> None:
        self.stream, self.step, self.after = stream, step, after
        self.pids: list[int] = []
        self.reset_at: float | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stream.close()

    def __iter__(self):
        import errno
        import json

        for line in self.stream:
            yield line
            event = json.loads(line)
            if event["ev"] == "started" and event["key"].startswith(f"{self.step}/"):
                self.pids.append(event["pid"])
                if len(self.pids) == self.after:
                    self.reset_at = time.monotonic()
                    raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))


def test_a_reset_fork_server_socket_ends_the_run_naming_every_lost_task(root, tmp_path, monkeypatch):
    """``ECONNRESET`` on the lead's end of the socket while three tasks run: the run ends within
    seconds with one summary naming the lost connection and every lost task; the fork server
    (still alive behind the broken socket) and its tasks are stopped."""
    from mfc.config import Config
    from mfc.exceptions import RunFailed
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph
    from mfc.runner import local
    from mfc.runner.launch import LaunchOptions, launch

    seen: dict[str, object] = {}
    real = local.start_fork_server

    class ResettingSocket:
        def __init__(self, sock) -> None:
            self._sock = sock

        def makefile(self, mode: str):
            seen["stream"] = _ResetStream(self._sock.makefile(mode), "work", 3)
            return seen["stream"]

        def __getattr__(self, name: str):
            return getattr(self._sock, name)

    def start_fork_server(task_fn):
        pid, sock = real(task_fn)
        seen["server"] = pid
        return pid, ResettingSocket(sock)

    monkeypatch.setattr(local, "start_fork_server", start_fork_server)
    flow = write_flow(tmp_path, SLEEPERS)
    cls = flow_class(import_flow_file(flow), None, flow)
    config = Config(flags={"datastore_root": str(root), "local_executor": "fork", "quiet": True}, env={})
    with pytest.raises(RunFailed) as failed:
        launch(flow, cls, load_graph(flow, cls.__name__), [], config, LaunchOptions())
    ended = time.monotonic()
    stream = seen["stream"]
    # Seconds, not a hang: the killed server is reaped before the run ends, and on a loaded machine the
    # kernel has been seen to take ~5 s to finish a SIGKILL (the process in uninterruptible sleep).
    assert stream.reset_at is not None and ended - stream.reset_at < 12.0, ended - stream.reset_at
    message = str(failed.value)
    assert message.startswith(f"lost the connection to the fork server (pid {seen['server']}): "
                              "ConnectionResetError: [Errno 104] Connection reset by peer; it was stopped"), message
    lost = message.split("; tasks lost: ", 1)[1].split(", ")
    assert len(lost) == 3 and all(t.startswith("work/") for t in lost), message
    _assert_all_gone({seen["server"], *stream.pids})
    [run_id] = metadata(root).run_ids("ResetFlow")
    assert run_status(root, "ResetFlow", run_id) == "failed"
    for record in task_records(root, "ResetFlow", run_id, "work"):
        assert record["died"] and record["exception"]["message"].startswith("lost the connection"), record
