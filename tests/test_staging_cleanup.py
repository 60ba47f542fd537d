"""Staging files left by killed tasks are removed at the next run on the root and by
``mfc cleanup``; files a live process holds are never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from mfc.stores import staging
from tests.support import clean_env, flow_path, mfc, mfc_executable, process_alive, run_flow, write_flow

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def _age(path, seconds: float = 2 * staging.MIN_AGE) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _leftover(directory, name: str = ".tmp-spool-left", size: int = 10) -> str:
    """A staging file whose owner is gone (nobody holds its lock), old enough to be swept."""
    path = os.path.join(directory, name)
    with open(path, "wb") as fh:
        fh.write(b"x" * size)
    _age(path)
    return path


def test_sweep_removes_only_files_no_live_process_holds(tmp_path):
    left = _leftover(tmp_path)
    held, held_path = staging.create(str(tmp_path), "spool-")  # a live owner: this process
    _age(held_path)
    young = _leftover(tmp_path, ".tmp-young")
    os.utime(young)  # just created: may be between its creation and its lock
    other = _leftover(tmp_path, "not-staging")
    try:
        assert [s.path for s in staging.sweep(str(tmp_path), dry_run=True)] == [left]
        assert os.path.exists(left)
        swept = staging.sweep(str(tmp_path))
        assert [(s.path, s.size) for s in swept] == [(left, 10)]
        assert not os.path.exists(left)
        assert os.path.exists(held_path) and os.path.exists(young) and os.path.exists(other)
    finally:
        held.close()
    assert [s.path for s in staging.sweep(str(tmp_path))] == [held_path]  # its owner let go
    assert staging.describe(swept, "/d") == "removed 1 leftover staging file (10 bytes) from /d"
    assert staging.describe([], "/d") == "no leftover staging files in /d"


SLOW_ARTIFACT = '''
import os, time
from mfc import FlowSpec, step

class Slow:
    def __reduce__(self):
        open({marker!r}, "w").close()
        time.sleep(120)
        return (Slow, ())

class SpoolFlow(FlowSpec):
    @step
    def start(self):
        self.big = [b"x" * (8 * 1024 * 1024), Slow()]  # spills to a staging file, then hangs
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def test_a_task_killed_while_storing_an_artifact_leaves_a_spool_the_next_run_removes(root, tmp_path):
    marker = tmp_path / "pickling"
    flow = write_flow(tmp_path, SLOW_ARTIFACT.format(marker=str(marker)))
    proc = subprocess.Popen([mfc_executable(), "run", flow, "--quiet"], env=clean_env(root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    spools = list((root / ".staging").glob(".tmp-spool-*"))
    assert len(spools) == 1 and spools[0].stat().st_size > 8 * 1024 * 1024
    _age(spools[0])
    deadline = time.monotonic() + 10  # the task dies with its orchestrator, letting go of the spool
    while not staging.sweep(str(root / ".staging"), dry_run=True):
        assert time.monotonic() < deadline, "the task kept its spool locked"
        time.sleep(0.05)
    held, held_path = staging.create(str(root / ".staging"), "spool-")  # a live writer's file
    _age(held_path)
    try:
        run_flow(root, flow_path("linear"))
        assert not spools[0].exists()
        assert os.path.exists(held_path)
    finally:
        held.close()


def test_mfc_cleanup_removes_leftover_staging_files(root):
    (root / ".staging").mkdir()
    left = _leftover(str(root / ".staging"), size=2048)
    dry = mfc(root, "cleanup", "--dry-run", env=NO_DOCKER)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove 1 leftover staging file (2.0 KiB) from {root / '.staging'}" in dry.stdout
    assert os.path.exists(left)
    done = mfc(root, "cleanup", env=NO_DOCKER)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"removed 1 leftover staging file (2.0 KiB) from {root / '.staging'}"
    assert lines[1].startswith("containers not checked: Docker engine is not reachable")
    assert not os.path.exists(left)
    again = mfc(root, "cleanup", env=NO_DOCKER)
    assert again.stdout.splitlines()[0] == f"no leftover staging files in {root / '.staging'}"


def test_a_task_killed_mid_run_leaves_no_raw_log_behind_after_the_next_run(root, tmp_path):
    """The orchestrator's own staging files (raw task logs) go too once it is dead."""
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen([mfc_executable(), "run", flow_path("sleeper"), "--pidfile", str(pidfile)],
                            env=clean_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    raw = list((root / ".staging").glob(".tmp-log-*"))
    assert len(raw) == 2  # the sleeping task's stdout and stderr
    deadline = time.monotonic() + 10
    while process_alive(int(pidfile.read_text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    for path in raw:
        _age(path)
    run_flow(root, flow_path("linear"))
    assert not any(p.exists() for p in raw)
