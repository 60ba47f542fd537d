"""Failing tasks: the summary the CLI prints, retries, @catch, @timeout, crashes, fail-fast, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from support import (
    artifacts,
    assert_no_traceback,
    attempt_records,
    clean_env,
    describe,
    flow_path,
    line_of,
    mfc,
    mfc_executable,
    only,
    process_alive,
    run_flow,
    run_info,
    run_status,
    script,
    task_records,
    write_flow,
)

from mfc.exceptions import CaughtException


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_raising_step_gives_one_summary_and_a_failed_run(root):
    flow = flow_path("failing")
    proc, run_id = run_flow(root, flow, expect=1)
    [record] = task_records(root, "FailingFlow", run_id, "boom")
    pathspec = f"FailingFlow/{run_id}/boom/{record['task_id']}"
    assert len(error_lines(proc.stderr)) == 1, describe(proc)
    assert pathspec in proc.stderr
    assert "ValueError: bad value 42" in proc.stderr
    assert f"failing.py:{line_of(flow, 'RAISE-HERE')}" in proc.stderr
    assert f"mfc logs {pathspec}" in proc.stderr
    assert_no_traceback(proc.stderr)
    assert run_status(root, "FailingFlow", run_id) == "failed"
    assert record["status"] == "failed" and record["exception"]["type"] == "ValueError"
    assert task_records(root, "FailingFlow", run_id, "end") == []
    # the task's traceback is in its log
    logs = mfc(root, "logs", pathspec)
    assert logs.returncode == 0, describe(logs)
    assert "about to fail" in logs.stdout
    assert "Traceback (most recent call last)" in logs.stderr
    assert "ValueError: bad value 42" in logs.stderr


def test_retry_until_third_attempt_succeeds(root):
    _, run_id = run_flow(root, flow_path("retrying"))
    assert run_status(root, "RetryFlow", run_id) == "succeeded"
    [record] = task_records(root, "RetryFlow", run_id, "flaky")
    attempts = attempt_records(root, "RetryFlow", run_id, "flaky", record["task_id"])
    assert [a["attempt"] for a in attempts] == [0, 1, 2]
    assert [a["status"] for a in attempts] == ["failed", "failed", "ok"]
    assert attempts[1]["exception"]["message"] == "flaky failure on attempt 1"
    assert only(root, "RetryFlow", run_id, "end")["final"] == 2


def test_catch_and_catch_with_retry(root):
    _, run_id = run_flow(root, flow_path("catching"))
    assert run_status(root, "CatchFlow", run_id) == "succeeded"
    caught = only(root, "CatchFlow", run_id, "caught")
    err = caught["err"]
    assert isinstance(err, CaughtException)
    assert err.type == "builtins.ValueError" and err.exception == "caught me"  # module-qualified, as Metaflow
    assert err.where == f"catching.py:{line_of(flow_path('catching'), 'caught me')}"
    [retried] = task_records(root, "CatchFlow", run_id, "caught_retry")
    attempts = attempt_records(root, "CatchFlow", run_id, "caught_retry", retried["task_id"])
    assert [a["status"] for a in attempts] == ["failed", "ok"]
    assert attempts[-1]["caught"]["type"] == "KeyError"
    err2 = only(root, "CatchFlow", run_id, "caught_retry")["err2"]
    assert err2.type == "builtins.KeyError" and "attempt 1" in err2.exception
    join = only(root, "CatchFlow", run_id, "join")
    assert join["err_text"] == "builtins.ValueError: caught me"
    assert join["err2_text"].startswith("builtins.KeyError:") and "attempt 1" in join["err2_text"]
    # a task that died is caught too: its fallback attempt records the reason
    assert "killed by signal SIGSEGV" in join["err3_text"]
    [crashed] = task_records(root, "CatchFlow", run_id, "crashed")
    crash_attempts = attempt_records(root, "CatchFlow", run_id, "crashed", crashed["task_id"])
    assert [(a["status"], bool(a.get("died"))) for a in crash_attempts] == [("failed", True), ("ok", False)]
    assert only(root, "CatchFlow", run_id, "end")["downstream_ran"] is True


def test_timeout_kills_the_step_and_fails_fast(root):
    start = time.monotonic()
    proc, run_id = run_flow(root, flow_path("timeouts"), "--mode", "plain", expect=1)
    elapsed = time.monotonic() - start
    assert elapsed < 12, f"took {elapsed:.1f}s"
    assert "timed out" in proc.stderr, describe(proc)
    assert "/slow/" in proc.stderr
    assert_no_traceback(proc.stderr)
    assert run_status(root, "TimeoutFlow", run_id) == "failed"


def test_timeout_with_retry_and_catch(root):
    start = time.monotonic()
    _, run_id = run_flow(root, flow_path("timeouts"), "--mode", "combo")
    assert time.monotonic() - start < 15
    [record] = task_records(root, "TimeoutFlow", run_id, "guarded")
    attempts = attempt_records(root, "TimeoutFlow", run_id, "guarded", record["task_id"])
    assert [a["status"] for a in attempts] == ["failed", "failed", "ok"]
    assert all("timed out" in a["exception"]["message"] for a in attempts[:2])
    err = only(root, "TimeoutFlow", run_id, "guarded")["err"]
    assert "timed out" in str(err)
    assert "timed out" in only(root, "TimeoutFlow", run_id, "join")["err_text"]
    assert run_status(root, "TimeoutFlow", run_id) == "succeeded"


@pytest.mark.parametrize("mode, reason, executor", [
    ("segv", "killed by signal SIGSEGV", "fork"),
    ("segv", "killed by signal SIGSEGV", "spawn"),
    ("os_exit", "os._exit", "fork"),
    ("sys_exit", "sys.exit(3)", "fork"),
    ("sigkill", "killed by signal SIGKILL", "fork"),
    ("memory", "MemoryError", "fork"),
])
def test_crash_fails_only_its_own_task(root, tmp_path, mode, reason, executor):
    sync = tmp_path / "sync"
    sync.mkdir()
    proc, run_id = run_flow(root, flow_path("crash"), "--mode", mode, "--syncdir", str(sync),
                            env={"MFC_LOCAL_EXECUTOR": executor}, expect=1)
    assert reason in proc.stderr, describe(proc)
    assert len(error_lines(proc.stderr)) == 1
    assert_no_traceback(proc.stderr)
    recs = task_records(root, "CrashFlow", run_id, "body")
    assert [r["status"] for r in recs] == ["ok", "failed", "ok"]
    assert f"CrashFlow/{run_id}/body/{recs[1]['task_id']}" in proc.stderr
    assert reason in recs[1]["exception"]["message"] or reason == recs[1]["exception"]["type"]
    values = artifacts(root, "CrashFlow", run_id, "body")
    assert values[0]["value"] == 0 and values[2]["value"] == 200
    assert run_status(root, "CrashFlow", run_id) == "failed"


def test_fail_fast_stops_sleeping_siblings(root, tmp_path):
    piddir = tmp_path / "pids"
    piddir.mkdir()
    flow = flow_path("fan")
    start = time.monotonic()
    proc, run_id = run_flow(root, flow, "--n", "4", "--fail", "0", "--sleep", "30", "--piddir", str(piddir), expect=1)
    elapsed = time.monotonic() - start
    assert elapsed < 12, f"took {elapsed:.1f}s"
    recs = task_records(root, "FanFlow", run_id, "body")
    failing = recs[0]
    assert failing["exception"]["type"] == "RuntimeError"
    assert f"FanFlow/{run_id}/body/{failing['task_id']}" in proc.stderr, describe(proc)
    assert "item 0 failed" in proc.stderr
    assert f"fan.py:{line_of(flow, 'FAN-FAIL')}" in proc.stderr
    assert len(error_lines(proc.stderr)) == 1
    assert [r["status"] for r in recs[1:]] == ["failed"] * 3
    assert all(r.get("died") for r in recs[1:])
    assert all("stopped because the run failed" in r["exception"]["message"] for r in recs[1:])
    pids = [int(p.read_text()) for p in piddir.iterdir()]
    assert len(pids) == 3
    assert not [pid for pid in pids if process_alive(pid)]
    assert run_status(root, "FanFlow", run_id) == "failed"


@pytest.mark.parametrize("executor", [
    "fork",
    "spawn",
])
def test_cli_exits_promptly_once_a_failed_run_has_ended(root, executor):
    _, run_id = run_flow(root, flow_path("fan"), "--n", "3", "--fail", "0", "--sleep", "30",
                         env={"MFC_LOCAL_EXECUTOR": executor}, expect=1)
    exited = time.time()
    lingered = exited - run_info(root, "FanFlow", run_id)["finished_at"]
    assert lingered < 1.0, f"the CLI exited {lingered:.2f}s after the run was marked failed"


@pytest.mark.parametrize("executor", [
    "fork",
    "spawn",
])
def test_background_processes_of_a_task_are_stopped(root, tmp_path, executor):
    pidfile = tmp_path / "child.pid"
    run_flow(root, flow_path("leaky"), "--pidfile", str(pidfile), extra=("-q",), env={"MFC_LOCAL_EXECUTOR": executor})
    child = int(pidfile.read_text())
    try:
        deadline = time.monotonic() + 2
        while process_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(child), "a process started by the step survived the run"
    finally:
        if process_alive(child):
            os.kill(child, signal.SIGKILL)


def test_max_num_splits(root):
    proc, run_id = run_flow(root, flow_path("fan"), "--n", "5", extra=("--max-num-splits", "3"), expect=1)
    assert "--max-num-splits" in proc.stderr, describe(proc)
    assert "5 items" in proc.stderr
    assert_no_traceback(proc.stderr)
    assert task_records(root, "FanFlow", run_id, "body") == []
    assert run_status(root, "FanFlow", run_id) == "failed"


def test_died_task_record_keeps_its_foreach_position(root, tmp_path):
    sync = tmp_path / "sync"
    sync.mkdir()
    _, run_id = run_flow(root, flow_path("crash"), "--mode", "segv", "--syncdir", str(sync), expect=1)
    died = [r for r in task_records(root, "CrashFlow", run_id, "body") if r.get("died")]
    assert len(died) == 1
    assert [(f["step"], f["index"], f["num_splits"]) for f in died[0]["foreach_stack"]] == [("start", 1, 3)]


@pytest.mark.parametrize("how, executor", [("mfc", "fork"), ("script", "fork"), ("mfc", "spawn")])
def test_ctrl_c_stops_every_task(root, tmp_path, how, executor):
    pidfile = tmp_path / "nap.pid"
    id_file = tmp_path / "run-id"
    flow = flow_path("sleeper")
    args = ["run", "--run-id-file", str(id_file), "--pidfile", str(pidfile)]
    command = [mfc_executable(), args[0], flow, *args[1:]] if how == "mfc" else [sys.executable, flow, *args]
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        env = clean_env(root, {"MFC_LOCAL_EXECUTOR": executor})
        proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while not pidfile.exists():
                assert proc.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "the task never started"
                time.sleep(0.05)
            task_pid = int(pidfile.read_text())
            assert process_alive(task_pid)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=10)
            stopped_in = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 130, err.read_text()
    assert stopped_in < 6, f"took {stopped_in:.1f}s to stop"
    deadline = time.monotonic() + 2
    while process_alive(task_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(task_pid), "the task process survived Ctrl-C"
    errors = err.read_text()
    assert_no_traceback(errors)
    assert errors.strip().splitlines() == [line for line in errors.splitlines() if line.startswith("error:")]
    assert "interrupted by Ctrl-C" in errors
    run_id = id_file.read_text().strip()
    assert run_status(root, "SleeperFlow", run_id) == "interrupted"
    assert task_records(root, "SleeperFlow", run_id, "end") == []


def test_failed_run_via_script_form(root):
    proc = script(root, flow_path("failing"), "run")
    assert proc.returncode == 1, describe(proc)
    assert len(error_lines(proc.stderr)) == 1
    assert "ValueError: bad value 42" in proc.stderr
    assert_no_traceback(proc.stderr)


UNPICKLABLE = """
    import threading

    from mfc import FlowSpec, step


    class LockFlow(FlowSpec):
        @step
        def start(self):
            self.lock = threading.Lock()
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_unpicklable_artifact_fails_the_task_clearly(root, tmp_path):
    proc, run_id = run_flow(root, write_flow(tmp_path, UNPICKLABLE), extra=("-q",), expect=1)
    assert len(error_lines(proc.stderr)) == 1, describe(proc)
    assert f"LockFlow/{run_id}/start/" in proc.stderr
    assert "artifact 'lock'" in proc.stderr and "cannot be pickled" in proc.stderr
    assert_no_traceback(proc.stderr)
    assert run_status(root, "LockFlow", run_id) == "failed"


def test_summary_of_an_mfc_side_error_does_not_point_into_mfc(root, tmp_path):
    proc, _ = run_flow(root, write_flow(tmp_path, UNPICKLABLE), extra=("-q",), expect=1)
    assert "artifacts.py" not in proc.stderr and "raise ArtifactError" not in proc.stderr, proc.stderr
