"""What every executor owes the orchestrator: the moment a task starts (``@timeout`` counts from
it, queue time is recorded apart), and the run's code as it was when the run started."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mfc.config import Config
from mfc.flowload import flow_class, import_flow_file
from mfc.graph import load_graph
from mfc.runner.executor import Handle, TaskExit
from mfc.runner.launch import LaunchOptions, launch
from mfc.runner.local import SpawnExecutor
from mfc.runner.taskspec import TaskSpec
from tests.support import only, run_flow, task_records, write_flow

QUEUED = '''
import time
from mfc import FlowSpec, step, timeout

class QueuedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    @timeout(seconds=2)
    @step
    def slow(self):
        time.sleep(1)
        self.done = True
        self.next(self.end)

    @step
    def end(self):
        pass
'''


class _QueuedSpawn(SpawnExecutor):
    """A spawn executor whose tasks wait ``delay`` seconds in a queue before their process starts
    (as a Batch job waits RUNNABLE); a task killed while queued ends without running, as there."""

    name = "queued"

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.killed: set[str] = set()

    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        handle = Handle(f"{spec.step}/{spec.task_id}/{spec.attempt}", spec, stdout, stderr)
        threading.Timer(self.delay, self._leave_queue, args=(spec, stdout, stderr)).start()
        return handle

    def _leave_queue(self, spec: TaskSpec, stdout: str, stderr: str) -> None:
        key = f"{spec.step}/{spec.task_id}/{spec.attempt}"
        if key in self.killed:
            self.events.put(TaskExit(key, -9))
        else:
            super().submit(spec, stdout, stderr)

    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        self.killed.add(handle.key)
        super().kill(handle, grace)


def test_time_in_a_queue_does_not_count_towards_timeout_and_is_recorded(root, tmp_path):
    """A task queued 3 s, then running 1 s under @timeout(seconds=2), is not timed out; its record
    says how long it was queued."""
    flow = write_flow(tmp_path, QUEUED)
    cls = flow_class(import_flow_file(flow), None, flow)
    config = Config(flags={"datastore_root": str(root), "local_executor": "spawn", "quiet": True}, env={})
    options = LaunchOptions(executors={"queued": _QueuedSpawn(3.0)}, executor_for_step={"slow": "queued"})
    run_id = launch(flow, cls, load_graph(flow, cls.__name__), [], config, options)
    [record] = task_records(root, "QueuedFlow", run_id, "slow")
    assert record["status"] == "ok", record
    assert record["queued_seconds"] >= 3.0, record
    assert record["started_at"] - record["submitted_at"] == pytest.approx(record["queued_seconds"], abs=0.01)
    [first] = task_records(root, "QueuedFlow", run_id, "start")
    assert 0 <= first["queued_seconds"] < 3.0, first  # an ordinary local task: no queue to speak of


def test_timeout_still_counts_from_the_start(root, tmp_path):
    """The same task running 3 s after 1 s queued is timed out at 2 s of running, not earlier."""
    flow = write_flow(tmp_path, QUEUED.replace("time.sleep(1)", "time.sleep(30)"))
    cls = flow_class(import_flow_file(flow), None, flow)
    config = Config(flags={"datastore_root": str(root), "local_executor": "spawn", "quiet": True}, env={})
    options = LaunchOptions(executors={"queued": _QueuedSpawn(1.0)}, executor_for_step={"slow": "queued"})
    from mfc.exceptions import RunFailed

    t0 = time.monotonic()
    with pytest.raises(RunFailed, match=r"timed out after 2s \(@timeout\)"):
        launch(flow, cls, load_graph(flow, cls.__name__), [], config, options)
    assert 3.0 <= time.monotonic() - t0 < 15


EDITED = '''
import helper
from mfc import FlowSpec, step

VERSION = "old"
FLOW = {flow!r}
HELPER = {helper!r}

class EditedFlow(FlowSpec):
    @step
    def start(self):
        for path, old, new in ((FLOW, 'VERSION = "old"', 'VERSION = "new"'),
                               (HELPER, 'VALUE = "old"', 'VALUE = "new"')):
            with open(path) as fh:
                text = fh.read()
            with open(path, "w") as fh:
                fh.write(text.replace(old, new))
        self.next(self.two)

    @step
    def two(self):
        self.seen = (VERSION, helper.VALUE)
        self.next(self.end)

    @step
    def end(self):
        pass
'''


@pytest.mark.parametrize("executor", ["spawn", "fork"])
def test_edits_made_mid_run_do_not_leak_into_later_steps(root, tmp_path, executor):
    """Step start rewrites the flow file and a module it imports; step two still runs the code the
    run started with (the spawn executor's tasks run the run's code package, unpacked once into
    the code cache; the fork executor's fork a flow imported before any task). The next run
    runs the edited code, from its own package."""
    project = tmp_path / "project"
    project.mkdir()
    helper = project / "helper.py"
    helper.write_text('VALUE = "old"\n')
    flow = str(project / "flow.py")
    Path(flow).write_text(EDITED.format(flow=flow, helper=str(helper)))
    cache = tmp_path / "code-cache"
    env = {"MFC_LOCAL_EXECUTOR": executor, "MFC_CODE_CACHE": str(cache)}
    _, run_id = run_flow(root, flow, env=env)
    assert only(root, "EditedFlow", run_id, "two") == {"seen": ("old", "old")}
    assert 'VERSION = "new"' in Path(flow).read_text()
    _, second = run_flow(root, flow, env=env)
    assert only(root, "EditedFlow", second, "two") == {"seen": ("new", "new")}
    if executor == "spawn":  # one unpacked package per code version, shared by all of a run's tasks
        unpacked = sorted(p.name for p in cache.iterdir())
        assert len(unpacked) == 2 and all(len(name) == 64 for name in unpacked), unpacked
