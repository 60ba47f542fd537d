"""Liveness of real runs: the lease of ``mfc run``, ``kill -9`` and SIGTERM of it mid-run, resume
of a crashed run, task records refused once a run has ended, ``--run-id-file`` checked up front,
and a final status on every way out of a run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import (
    assert_no_traceback,
    clean_env,
    describe,
    flow_path,
    metadata,
    mfc,
    mfc_executable,
    process_alive,
    records,
    run_flow,
    run_info,
    task_records,
    write_flow,
)

from mfc.client import Run, default_namespace, namespace
from mfc.client import metadata as client_metadata
from mfc.config import Config
from mfc.runner.executor import Executor, Handle
from mfc.runner.taskspec import InputRef, TaskSpec
from mfc.stores.lease import driver_record, lease_record

LEASE = {"MFC_LEASE_INTERVAL": "0.2", "MFC_LEASE_TIMEOUT": "1"}

# Items 0 and 1 finish at once; 2 and 3 wait for the release file (or 60 s), so a kill lands
# mid-foreach with two tasks done and two running.
HELD = """
    import os
    import time
    from mfc import FlowSpec, Parameter, step

    class HeldFlow(FlowSpec):
        syncdir = Parameter("syncdir", required=True)

        @step
        def start(self):
            self.items = [1, 2, 3, 4]
            self.next(self.body, foreach="items")

        @step
        def body(self):
            with open(os.path.join(self.syncdir, f"pid-{self.index}"), "w") as fh:
                fh.write(str(os.getpid()))
            deadline = time.time() + 60
            while self.index >= 2 and not os.path.exists(os.path.join(self.syncdir, "release")) and time.time() < deadline:
                time.sleep(0.05)
            self.square = self.input * self.input
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.square for i in inputs)
            self.squares = [i.square for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            self.done = True
"""


def start_run(root: Path, tmp_path: Path, command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    id_file = tmp_path / f"run-id-{len(list(tmp_path.glob('run-id-*')))}"
    err = open(tmp_path / f"{id_file.name}.err", "w")
    proc = subprocess.Popen([mfc_executable(), "run", *command, "--run-id-file", str(id_file)],
                            env=clean_env(root, env), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    err.close()
    return proc, id_file


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> float:
    started = time.monotonic()
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def held_pids_written(sync: Path) -> bool:
    """Both held items (2 and 3, started in either order) have written their pids."""
    return all((sync / f"pid-{i}").exists() and (sync / f"pid-{i}").read_text() for i in (2, 3))


def ok_body_tasks(root: Path, run_id: str) -> int:
    return sum(1 for r in task_records(root, "HeldFlow", run_id, "body") if r.get("status") == "ok")


@pytest.fixture
def client_root(root):
    client_metadata(str(root))
    namespace(None)
    yield root
    client_metadata(None)
    default_namespace()


@pytest.mark.parametrize("executor", ["fork", "spawn"])
def test_kill_9_mid_foreach_is_crashed_and_resume_completes(client_root, tmp_path, executor):
    root = client_root
    flow = write_flow(tmp_path, HELD)
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**LEASE, "MFC_LOCAL_EXECUTOR": executor}
    proc, id_file = start_run(root, tmp_path, [flow, "--syncdir", str(sync)], env)
    try:
        wait_until(lambda: id_file.exists() and id_file.read_text(), 30, "the run id", proc)
        run_id = id_file.read_text()
        wait_until(lambda: ok_body_tasks(root, run_id) == 2 and held_pids_written(sync),
                   30, "two items done and two held", proc)
        assert run_info(root, "HeldFlow", run_id)["status"] == "running"
        held = [int((sync / f"pid-{i}").read_text()) for i in (2, 3)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def listed_crashed() -> bool:
        listed = mfc(root, "runs", "HeldFlow", "--status", "crashed", "--json")
        return listed.returncode == 0 and [r["run_id"] for r in json.loads(listed.stdout)] == [run_id]

    assert wait_until(listed_crashed, 5, "mfc runs to show the run crashed") < float(LEASE["MFC_LEASE_TIMEOUT"]) + 1
    run = Run(f"HeldFlow/{run_id}")
    assert run.status == "crashed" and run.finished and not run.successful
    assert "is gone" in run.error
    table = mfc(root, "runs", "HeldFlow")
    assert f"{run_id}    crashed" in table.stdout, describe(table)

    (sync / "release").write_text("")
    resumed = mfc(root, "resume", flow, "--origin-run-id", run_id, env=env)
    assert resumed.returncode == 0, describe(resumed)
    new_id = metadata(root).run_ids("HeldFlow")[0]
    assert new_id != run_id and f"Run HeldFlow/{new_id} succeeded." in resumed.stdout
    new = Run(f"HeldFlow/{new_id}")
    assert new.successful and new.origin_run_id == run_id
    assert new.data.total == 30 and new.data.squares == [1, 4, 9, 16] and new.data.done is True
    # Tasks still running in the dead run (spawn's, until they learn their parent died) end
    # without recording anything into it.
    for pid in held:
        wait_until(lambda pid=pid: not process_alive(pid), 30, f"task {pid} of the crashed run to end")
    assert ok_body_tasks(root, run_id) == 2
    assert Run(f"HeldFlow/{run_id}").status == "crashed"


def test_resume_reruns_a_step_the_crash_left_part_done(client_root, tmp_path):
    root = client_root
    flow = write_flow(tmp_path, HELD)
    sync = tmp_path / "sync"
    sync.mkdir()
    proc, id_file = start_run(root, tmp_path, [flow, "--syncdir", str(sync)], LEASE)
    try:
        wait_until(lambda: id_file.exists() and id_file.read_text(), 30, "the run id", proc)
        run_id = id_file.read_text()
        wait_until(lambda: ok_body_tasks(root, run_id) == 2 and held_pids_written(sync),
                   30, "two items done and two held", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # As if the driver had died after two items finished and before it launched the other two.
    body = root / "HeldFlow" / run_id / "body"
    for task in body.iterdir():
        if not (task / "0.json").exists():
            shutil.rmtree(task)
    assert len(list(body.iterdir())) == 2
    (sync / "release").write_text("")
    resumed = mfc(root, "resume", flow, "--origin-run-id", run_id, env=LEASE)
    assert resumed.returncode == 0, describe(resumed)
    new = Run(f"HeldFlow/{metadata(root).run_ids('HeldFlow')[0]}")
    assert new.successful and new.origin_run_id == run_id
    assert new.data is not None and new.data.total == 30 and new.data.squares == [1, 4, 9, 16]


@pytest.mark.parametrize("executor, to", [("fork", "process"), ("spawn", "process"), ("fork", "group")])
def test_sigterm_stops_the_run_like_ctrl_c(root, tmp_path, executor, to):
    pidfile = tmp_path / "nap.pid"
    proc, id_file = start_run(root, tmp_path, [flow_path("sleeper"), "--pidfile", str(pidfile)],
                              {**LEASE, "MFC_LOCAL_EXECUTOR": executor})
    try:
        wait_until(pidfile.exists, 30, "the task to start", proc)
        task_pid = int(pidfile.read_text())
        assert process_alive(task_pid)
        sent = time.monotonic()
        if to == "group":  # as a service manager or a shell's kill -TERM -PGID does: the fork server gets it too
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    errors = (tmp_path / f"{id_file.name}.err").read_text()
    assert code == 143, errors
    assert stopped_in < 6, f"took {stopped_in:.1f}s to stop"
    wait_until(lambda: not process_alive(task_pid), 3, "the task to be stopped")
    assert_no_traceback(errors)
    assert len(errors.strip().splitlines()) == 1 and errors.startswith("error: ") and "SIGTERM" in errors, errors
    run_id = id_file.read_text()
    info = run_info(root, "SleeperFlow", run_id)
    assert info["status"] == "interrupted" and "interrupted by SIGTERM" in info["result"]["error"]
    [nap] = task_records(root, "SleeperFlow", run_id, "nap")
    assert nap["status"] == "failed" and "interrupted" in nap["exception"]["message"]
    assert task_records(root, "SleeperFlow", run_id, "end") == []


def test_lease_is_refreshed_while_the_run_goes_and_resume_refuses_it(root, tmp_path):
    pidfile = tmp_path / "nap.pid"
    proc, id_file = start_run(root, tmp_path, [flow_path("sleeper"), "--pidfile", str(pidfile)], LEASE)
    try:
        wait_until(pidfile.exists, 30, "the task to start", proc)
        run_id = id_file.read_text()
        lease_file = root / "SleeperFlow" / run_id / "_lease.json"
        wait_until(lease_file.exists, 5, "the first heartbeat", proc)
        first = json.loads(lease_file.read_text())
        wait_until(lambda: json.loads(lease_file.read_text())["beat"] >= first["beat"] + 3, 5, "three more heartbeats", proc)
        later = json.loads(lease_file.read_text())
        assert later["pid"] == proc.pid and later["refreshed_at"] > first["refreshed_at"]
        assert later["expires_at"] == pytest.approx(later["refreshed_at"] + 1.0)
        assert run_info(root, "SleeperFlow", run_id)["status"] == "running"
        refused = mfc(root, "resume", flow_path("sleeper"), "--origin-run-id", run_id)
        assert refused.returncode == 2, describe(refused)
        assert f"run SleeperFlow/{run_id} is still running (driven by pid {proc.pid}" in refused.stderr
        assert_no_traceback(refused.stderr)
        assert metadata(root).run_ids("SleeperFlow") == [run_id]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.returncode == 130


@pytest.mark.parametrize("parent, what", [("missing", "does not exist"), ("a-file", "is not a directory")])
def test_run_id_file_in_a_missing_directory_is_refused_before_the_run(root, tmp_path, parent, what):
    (tmp_path / "a-file").write_text("")
    target = tmp_path / parent / "run-id"
    proc = mfc(root, "run", flow_path("linear"), "--run-id-file", str(target))
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.strip() == f"error: --run-id-file {target}: {target.parent} {what}"
    assert_no_traceback(proc.stderr)
    assert not (root / "LinearFlow").exists()  # no run left behind


def late_spec(root: Path, flow: str, run_id: str) -> TaskSpec:
    """The spec of one more ``end`` task in an existing run of tests/flows/linear.py."""
    recs = records(root, flow)
    [parent] = [t for t in recs.tasks(run_id, "end")]
    return TaskSpec(flow_file=flow_path("linear"), flow_name=flow, step="end", run_id=run_id, task_id="99",
                    datastore_root=str(root), inputs=[InputRef("end", parent, 0)])


def run_task(root: Path, spec: TaskSpec) -> subprocess.CompletedProcess:
    return mfc(root, "task", "--spec", spec.to_json())


def test_a_task_record_for_an_ended_run_is_refused(root):
    _, run_id = run_flow(root, flow_path("linear"))
    spec = late_spec(root, "LinearFlow", run_id)
    proc = run_task(root, spec)
    assert proc.returncode == 3, describe(proc)
    assert proc.stderr.strip() == (f"error: run LinearFlow/{run_id} has ended: succeeded; task LinearFlow/{run_id}/end/99 "
                                   "attempt 0 is not recorded")
    assert not (root / "LinearFlow" / run_id / "end" / "99").exists()


def test_a_task_record_for_a_crashed_run_is_refused_and_a_live_one_is_kept(root):
    _, run_id = run_flow(root, flow_path("linear"))
    status_file = root / "LinearFlow" / run_id / "_status.json"
    status_file.unlink()  # as if its driver had died before the end
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = driver_record(0.2, 1.0, pid=child.pid)
    child.wait()
    metadata(root).write_lease("LinearFlow", run_id, lease_record(dead))
    spec = late_spec(root, "LinearFlow", run_id)
    proc = run_task(root, spec)
    assert proc.returncode == 3, describe(proc)
    assert f"has ended: crashed (the process driving it (pid {child.pid} on host" in proc.stderr
    assert not (root / "LinearFlow" / run_id / "end" / "99").exists()
    # the same task while a live process holds the lease is recorded
    metadata(root).write_lease("LinearFlow", run_id, lease_record(driver_record(0.2, 1.0)))
    kept = run_task(root, spec)
    assert kept.returncode == 0, describe(kept)
    assert records(root, "LinearFlow").read(run_id, "end", "99", 0)["status"] == "ok"


class _BrokenExecutor(Executor):
    name = "broken"

    def start(self) -> None:
        raise RuntimeError("the broken executor cannot start")

    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        raise AssertionError("never reached")

    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        pass


def test_an_executor_that_fails_to_start_still_ends_the_run(root):
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph
    from mfc.runner.launch import LaunchOptions, launch

    flow = flow_path("linear")
    cls = flow_class(import_flow_file(flow), None, flow)
    config = Config(flags={"datastore_root": str(root), "local_executor": "spawn", "quiet": True}, env={})
    options = LaunchOptions(executors={"broken": _BrokenExecutor()}, executor_for_step={"start": "broken"})
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RuntimeError, match="cannot start"):
        launch(flow, cls, load_graph(flow, cls.__name__), [], config, options)
    [run_id] = metadata(root).run_ids("LinearFlow")
    info = run_info(root, "LinearFlow", run_id)
    assert info["status"] == "failed"
    assert info["result"]["error"] == "RuntimeError: the broken executor cannot start"
    assert signal.getsignal(signal.SIGTERM) == handler  # launch puts SIGTERM's handler back


def test_a_run_that_fails_has_its_lease_stopped(root):
    proc, run_id = run_flow(root, flow_path("failing"), expect=1, env=LEASE)
    lease_file = root / "FailingFlow" / run_id / "_lease.json"
    beat = json.loads(lease_file.read_text())["beat"]
    time.sleep(0.6)
    assert json.loads(lease_file.read_text())["beat"] == beat
    assert run_info(root, "FailingFlow", run_id)["status"] == "failed"


@pytest.mark.parametrize("settings, message", [
    ({"MFC_LEASE_INTERVAL": "-1"}, "lease_interval (env MFC_LEASE_INTERVAL): expected seconds >= 0, got -1"),
    ({"MFC_LEASE_INTERVAL": "5", "MFC_LEASE_TIMEOUT": "5"},
     "lease_timeout (env MFC_LEASE_TIMEOUT): 5s must be longer than lease_interval 5s"),
])
def test_bad_lease_settings_are_one_line(root, settings, message):
    proc = mfc(root, "run", flow_path("linear"), env=settings)
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.startswith(f"error: {message}") and len(proc.stderr.strip().splitlines()) == 1
    assert not (root / "LinearFlow").exists()


def test_no_heartbeat_with_interval_zero(root):
    _, run_id = run_flow(root, flow_path("linear"), env={"MFC_LEASE_INTERVAL": "0"})
    assert not (root / "LinearFlow" / run_id / "_lease.json").exists()
    assert run_info(root, "LinearFlow", run_id)["driver"]["timeout"] is None


@pytest.fixture(scope="module")
def moto():
    from moto_server import MotoServer

    with MotoServer() as server:
        yield server


def test_lease_and_crash_on_s3(moto, tmp_path):
    from mfc.stores.metadata import BlobMetadata
    from mfc.stores.records import TaskRecords
    from mfc.stores.s3 import S3BlobStore

    root = f"s3://{moto.new_bucket()}/ds"
    blobs = S3BlobStore(root, client=moto.client())
    meta, recs = BlobMetadata(blobs), TaskRecords(blobs, "HeldFlow")
    flow = write_flow(tmp_path, HELD)
    sync = tmp_path / "sync"
    sync.mkdir()
    env = {**moto.env(), **LEASE, "MFC_DATASTORE_ROOT": root}
    id_file = tmp_path / "run-id"
    proc = subprocess.Popen([mfc_executable(), "run", flow, "--syncdir", str(sync), "--run-id-file", str(id_file)],
                            env=clean_env(None, env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until(lambda: held_pids_written(sync), 60, "the held items to start", proc)
        run_id = id_file.read_text()
        first = json.loads(blobs.get_bytes(f"HeldFlow/{run_id}/_lease.json"))
        wait_until(lambda: json.loads(blobs.get_bytes(f"HeldFlow/{run_id}/_lease.json"))["beat"] > first["beat"] + 1,
                   10, "heartbeats on S3", proc)
        assert meta.run("HeldFlow", run_id)["status"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    listed = mfc(None, "runs", "HeldFlow", "--json", env=env)
    assert listed.returncode == 0, describe(listed)
    [row] = json.loads(listed.stdout)
    assert row["run_id"] == run_id and row["status"] == "crashed" and "is gone" in row["error"]
    (sync / "release").write_text("")
    resumed = mfc(None, "resume", flow, "--origin-run-id", run_id, env=env, timeout=120)
    assert resumed.returncode == 0, describe(resumed)
    new_id = meta.run_ids("HeldFlow")[0]
    end = recs.latest(new_id, "end", recs.tasks(new_id, "end")[0])
    assert end["status"] == "ok" and meta.run("HeldFlow", new_id)["status"] == "succeeded"
    from mfc.stores.artifacts import ArtifactStore

    assert ArtifactStore(blobs, "HeldFlow").load(end["artifacts"]["total"][0]) == 30
