"""A Step Functions run's status is its execution's: the pure status function on each execution
status, the provider asking only where it should (readers, not tasks; sfn drivers without a final
status) and recording what it found, and ``mfc runs`` and the client against executions that
moto really ran to FAILED, TIMED_OUT, ABORTED and SUCCEEDED."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
from moto_server import REGION
from support import clean_env, describe, flow_path, mfc

from mfc.client import Run, default_namespace, namespace
from mfc.client import metadata as client_metadata
from mfc.config import Config
from mfc.sfn import runstart, status
from mfc.stores.local import LocalBlobStore
from mfc.stores.metadata import BlobMetadata
from mfc.stores.provider import open_metadata
from mfc.stores.runstatus import CAUSE_CHARS, SFN_DRIVER, run_state, when

NOW = 1_800_000_000.0
ARN = "arn:aws:states:us-east-1:123456789012:execution:TrainFlow:e1"
DRIVER = {"kind": "sfn", "execution": ARN, "state_machine": "TrainFlow"}
ROLE = "arn:aws:iam::123456789012:role/mfc-sfn"


def execution(status: str, stopped_at: float | None = NOW - 10, **extra) -> dict:
    return {"status": status, "stopped_at": stopped_at, "error": None, "cause": None, **extra}


# -- the pure function ---------------------------------------------------------------------------

def test_the_run_records_driver_kind_is_the_one_the_status_function_knows():
    assert runstart.DRIVER_KIND == SFN_DRIVER


@pytest.mark.parametrize("ended", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_an_ended_execution_without_a_final_record_is_failed_naming_its_status(ended):
    state = run_state(None, None, DRIVER, NOW - 600, NOW, None, execution=execution(ended))
    assert (state.status, state.ended_at, state.ended) == ("failed", NOW - 10, True)
    assert state.reason == f"its Step Functions execution ended {ended} at {when(NOW - 10)}"


def test_the_reason_carries_the_executions_error_and_cause_on_one_short_line():
    cause = json.dumps({"StatusReason": "Essential container in task exited", "Container": {"x": "y" * 500}},
                       indent=2)
    state = run_state(None, None, DRIVER, NOW - 600, NOW, None,
                      execution=execution("FAILED", error="States.TaskFailed", cause=cause))
    assert state.reason.startswith(f"its Step Functions execution ended FAILED at {when(NOW - 10)}: "
                                   'States.TaskFailed: { "StatusReason": "Essential container in task exited"')
    assert "\n" not in state.reason and state.reason.endswith("...")
    assert len(state.reason.split(": ", 1)[1]) == CAUSE_CHARS


def test_an_execution_that_does_not_say_when_it_stopped_ended_by_the_readers_clock():
    state = run_state(None, None, DRIVER, NOW - 600, NOW, None, execution=execution("TIMED_OUT", None))
    assert (state.status, state.ended_at) == ("failed", NOW)
    assert state.reason == "its Step Functions execution ended TIMED_OUT"


def test_a_succeeded_execution_whose_end_task_write_was_lost_is_succeeded():
    state = run_state(None, None, DRIVER, NOW - 600, NOW, None, execution=execution("SUCCEEDED"))
    assert (state.status, state.ended_at, state.reason) == ("succeeded", NOW - 10, None)


@pytest.mark.parametrize("fact", [None, execution("RUNNING", None), execution("PENDING_REDRIVE", None)])
def test_a_running_or_unaskable_execution_is_running_however_old_the_run(fact):
    state = run_state(None, None, DRIVER, NOW - 30 * 86400, NOW, None, execution=fact)
    assert (state.status, state.ended_at, state.reason) == ("running", None, None)


@pytest.mark.parametrize("recorded", ["succeeded", "failed"])
def test_a_final_record_wins_over_the_execution(recorded):
    state = run_state({"status": recorded, "finished_at": NOW - 50}, None, DRIVER, NOW - 600, NOW, None,
                      execution=execution("ABORTED" if recorded == "succeeded" else "SUCCEEDED"))
    assert (state.status, state.ended_at, state.reason) == (recorded, NOW - 50, None)


def test_a_local_driver_ignores_an_execution_fact():
    local = {"host": "elsewhere", "pid": 5, "timeout": 20.0}
    state = run_state(None, None, local, NOW - 5, NOW, None, execution=execution("FAILED"))
    assert state.status == "running"


# -- the provider: who asks, and what is recorded ------------------------------------------------

class Probe:
    """A stand-in for Step Functions: the drivers it was asked about, and a fixed answer."""

    def __init__(self, answer: dict | None) -> None:
        self.answer, self.asked = answer, []

    def __call__(self, driver: dict) -> dict | None:
        self.asked.append(driver)
        return self.answer


def sfn_run(blobs, flow: str = "TrainFlow", run_id: str = "sfn-e1", driver: dict = DRIVER) -> str:
    meta = BlobMetadata(blobs)
    return meta.create_run(flow, {"user": "u", "tags": [], "system_tags": [], "driver": driver}, run_id=run_id)


def test_a_reader_asks_the_execution_records_the_end_and_later_readers_need_not_ask(tmp_path):
    blobs = LocalBlobStore(str(tmp_path))
    sfn_run(blobs)
    probe = Probe(execution("ABORTED", NOW - 10, error="mfc.Terminated", cause="stopped by hand"))
    run = BlobMetadata(blobs, execution_probe=probe).run("TrainFlow", "sfn-e1")
    reason = f"its Step Functions execution ended ABORTED at {when(NOW - 10)}: mfc.Terminated: stopped by hand"
    assert (run["status"], run["finished_at"], run["result"]["error"]) == ("failed", NOW - 10, reason)
    assert probe.asked == [DRIVER]
    recorded = json.loads((tmp_path / "TrainFlow" / "sfn-e1" / "_status.json").read_text())
    assert recorded == {"status": "failed", "finished_at": NOW - 10, "execution_status": "ABORTED", "error": reason}
    again = Probe(execution("SUCCEEDED"))
    assert BlobMetadata(blobs, execution_probe=again).run("TrainFlow", "sfn-e1")["status"] == "failed"
    assert again.asked == []
    assert BlobMetadata(blobs).run("TrainFlow", "sfn-e1")["result"]["error"] == reason  # a task's view too


def test_a_succeeded_execution_is_recorded_succeeded(tmp_path):
    blobs = LocalBlobStore(str(tmp_path))
    sfn_run(blobs)
    assert BlobMetadata(blobs, execution_probe=Probe(execution("SUCCEEDED"))).run("TrainFlow", "sfn-e1")["status"] \
        == "succeeded"
    assert BlobMetadata(blobs).state("TrainFlow", "sfn-e1").status == "succeeded"


def test_a_running_execution_is_asked_again_and_nothing_is_recorded(tmp_path):
    blobs = LocalBlobStore(str(tmp_path))
    sfn_run(blobs)
    probe = Probe(execution("RUNNING", None))
    meta = BlobMetadata(blobs, execution_probe=probe)
    assert [meta.state("TrainFlow", "sfn-e1").status for _ in range(2)] == ["running", "running"]
    assert len(probe.asked) == 2 and not (tmp_path / "TrainFlow" / "sfn-e1" / "_status.json").exists()


def test_only_sfn_runs_without_a_final_status_are_asked(tmp_path):
    blobs = LocalBlobStore(str(tmp_path))
    sfn_run(blobs, run_id="sfn-done")
    BlobMetadata(blobs).finish_run("TrainFlow", "sfn-done", "succeeded")
    BlobMetadata(blobs).create_run("TrainFlow", {"driver": {"kind": "local", "host": "h", "pid": 7, "timeout": 20.0}},
                                   run_id="local-1")
    probe = Probe(execution("FAILED"))
    listed = dict(BlobMetadata(blobs, execution_probe=probe).runs("TrainFlow", ["sfn-done", "local-1"]))
    assert (listed["sfn-done"]["status"], listed["local-1"]["status"]) == ("succeeded", "running")
    assert probe.asked == []


class ReadOnly(LocalBlobStore):
    """A store this reader may read but not write (its credentials allow no PutObject)."""

    def put_bytes(self, key: str, data: bytes) -> None:
        raise PermissionError(f"{key}: access denied")

    def put_new(self, key: str, data: bytes) -> bool:
        raise PermissionError(f"{key}: access denied")


def test_a_reader_that_cannot_write_still_reads_the_end_and_records_nothing(tmp_path):
    sfn_run(LocalBlobStore(str(tmp_path)))
    meta = BlobMetadata(ReadOnly(str(tmp_path)), execution_probe=Probe(execution("TIMED_OUT")))
    assert meta.state("TrainFlow", "sfn-e1").status == "failed"
    assert not (tmp_path / "TrainFlow" / "sfn-e1" / "_status.json").exists()


def test_a_final_status_written_meanwhile_is_not_overwritten(tmp_path):
    blobs = LocalBlobStore(str(tmp_path))
    sfn_run(blobs)

    def end_task_writes_first(driver: dict) -> dict:  # the end task finishes while the reader asks
        BlobMetadata(blobs).finish_run("TrainFlow", "sfn-e1", "succeeded")
        return execution("ABORTED")

    BlobMetadata(blobs, execution_probe=end_task_writes_first).state("TrainFlow", "sfn-e1")
    assert BlobMetadata(blobs).state("TrainFlow", "sfn-e1").status == "succeeded"


def test_readers_opened_from_a_config_ask_and_tasks_do_not(tmp_path, monkeypatch):
    from mfc.runner import task

    blobs = LocalBlobStore(str(tmp_path))
    sfn_run(blobs)
    asked = []
    monkeypatch.setattr(status, "execution_status", lambda driver, config: asked.append(driver) or execution("FAILED"))
    assert open_metadata(blobs).execution_probe is None and open_metadata(blobs, "local").execution_probe is None

    class Spec:
        flow_name, run_id = "TrainFlow", "sfn-e1"

    assert task.run_ended(blobs, Spec()) is None and asked == []  # a task reads it running, asking nobody
    assert open_metadata(blobs, Config()).state("TrainFlow", "sfn-e1").status == "failed" and asked == [DRIVER]


def test_reading_local_runs_through_a_config_loads_neither_sfn_nor_boto3(tmp_path):
    code = (f"from mfc.config import Config; from mfc.stores.local import LocalBlobStore; "
            f"from mfc.stores.provider import open_metadata; import sys; "
            f"blobs = LocalBlobStore({str(tmp_path)!r}); meta = open_metadata(blobs, Config()); "
            f"meta.create_run('F', {{'driver': {{'host': 'h', 'pid': 1, 'timeout': 20.0}}}}, run_id='r'); "
            f"print(meta.run('F', 'r')['status'], 'mfc.sfn.status' in sys.modules, 'boto3' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(tmp_path),
                          timeout=60)
    assert proc.stdout.split() == ["running", "False", "False"], describe(proc)


def test_the_probe_keeps_ended_answers_and_backs_off_an_unreachable_endpoint(monkeypatch):
    status.forget()
    calls = []

    class Client:
        def describe_execution(self, executionArn):
            calls.append(executionArn)
            if "down" in executionArn:
                raise ConnectionError("connection refused")
            return {"status": "FAILED" if "failed" in executionArn else "RUNNING", "error": "E", "cause": "C"}

    monkeypatch.setattr(status, "_client", lambda where: Client())
    config = Config({"aws_endpoint_url": "http://127.0.0.1:1"})
    failed, running = (dict(DRIVER, execution=ARN.replace("e1", name)) for name in ("failed", "running"))
    for _ in range(3):
        assert status.execution_status(failed, config) == {"status": "FAILED", "stopped_at": None, "error": "E",
                                                           "cause": "C"}
        assert status.execution_status(running, config)["status"] == "RUNNING"
    assert calls.count(failed["execution"]) == 1 and calls.count(running["execution"]) == 1  # within RUNNING_TTL
    monkeypatch.setattr(status, "RUNNING_TTL", 0.0)
    status.forget()
    status.execution_status(running, config)
    status.execution_status(running, config)
    assert calls.count(running["execution"]) == 3
    down = [dict(DRIVER, execution=ARN.replace("e1", f"down{i}")) for i in range(5)]
    assert [status.execution_status(d, config) for d in down] == [None] * 5
    assert sum("down" in c for c in calls) == 1  # one failed call, not one per run
    assert status.execution_status({"kind": "sfn"}, config) is None
    status.forget()


# -- against executions moto really ran ----------------------------------------------------------

DEFINITIONS = {
    "failed": {"StartAt": "Train", "States": {"Train": {"Type": "Fail", "Error": "mfc.StepFailed",
                                                        "Cause": "step train failed for good"}}},
    "succeeded": {"StartAt": "End", "States": {"End": {"Type": "Pass", "End": True}}},
    "timed-out": {"StartAt": "Train", "TimeoutSeconds": 1,
                  "States": {"Train": {"Type": "Wait", "Seconds": 60, "End": True}}},
    "aborted": {"StartAt": "Train", "States": {"Train": {"Type": "Wait", "Seconds": 60, "End": True}}},
    "running": {"StartAt": "Train", "States": {"Train": {"Type": "Wait", "Seconds": 300, "End": True}}},
}


@pytest.fixture(scope="module")
def executed(moto):
    """``moto`` told to really run state machines."""
    request = urllib.request.Request(f"{moto.endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()
    return moto


@pytest.fixture
def sfn_runs(executed):
    """An S3 datastore on moto holding one run of ``SfnFlow`` per execution of ``DEFINITIONS``,
    each run recorded as the start state records it; returns (datastore root, env, execution ARNs)."""
    sfn = executed.client("stepfunctions")
    suffix = str(time.time_ns())
    arns = {}
    for outcome, definition in DEFINITIONS.items():
        machine = sfn.create_state_machine(name=f"SfnFlow-{outcome}-{suffix}", definition=json.dumps(definition),
                                           roleArn=ROLE)["stateMachineArn"]
        arns[outcome] = sfn.start_execution(stateMachineArn=machine, name=outcome)["executionArn"]
    sfn.stop_execution(executionArn=arns["aborted"], error="mfc.Terminated", cause="mfc sfn terminate sfn-aborted")
    root = f"s3://{executed.new_bucket()}/ds"
    env = {**executed.env(), "MFC_AWS_ENDPOINT_URL": executed.endpoint, "MFC_DATASTORE_ROOT": root,
           "MFC_CONFIG": "/nonexistent/mfc-config.toml"}
    meta = BlobMetadata(_store(executed, root))
    for outcome, arn in arns.items():
        meta.create_run("SfnFlow", {"user": "prod", "tags": [], "system_tags": ["user:prod"],
                                    "driver": {"kind": "sfn", "execution": arn, "state_machine": "SfnFlow"}},
                        run_id=f"sfn-{outcome}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the 1 s workflow timeout has to pass
        if sfn.describe_execution(executionArn=arns["timed-out"])["status"] != "RUNNING":
            break
        time.sleep(0.2)
    return root, env, arns


def _store(moto, root: str):
    from mfc.stores.s3 import S3BlobStore

    return S3BlobStore(root, client=moto.client())


def test_mfc_runs_shows_each_execution_outcome_and_records_the_ended_ones(sfn_runs, executed):
    root, env, _ = sfn_runs
    proc = mfc(None, "runs", "SfnFlow", "--json", env=env)
    assert proc.returncode == 0, describe(proc)
    rows = {r["run_id"]: r for r in json.loads(proc.stdout)}
    assert {k: r["status"] for k, r in rows.items()} == {
        "sfn-failed": "failed", "sfn-succeeded": "succeeded", "sfn-timed-out": "failed", "sfn-aborted": "failed",
        "sfn-running": "running"}
    assert rows["sfn-failed"]["error"].startswith("its Step Functions execution ended FAILED at ")
    assert rows["sfn-failed"]["error"].endswith(": mfc.StepFailed: step train failed for good")
    assert rows["sfn-aborted"]["error"].startswith("its Step Functions execution ended ABORTED at ")  # moto keeps
    # no error or cause of StopExecution (AWS does; the pure tests cover them)
    assert rows["sfn-timed-out"]["error"].startswith("its Step Functions execution ended TIMED_OUT")
    assert rows["sfn-succeeded"]["error"] is None and rows["sfn-running"]["finished_at"] is None
    assert all(rows[k]["finished_at"] for k in ("sfn-failed", "sfn-succeeded", "sfn-timed-out", "sfn-aborted"))
    meta = BlobMetadata(_store(executed, root))  # no probe: what a task, or a reader offline, now reads
    assert {k: meta.state("SfnFlow", k).status for k in rows} == {k: r["status"] for k, r in rows.items()}
    failed = mfc(None, "runs", "SfnFlow", "--status", "failed", env=env)
    assert sorted(line.split()[0] for line in failed.stdout.splitlines()[1:]) == [
        "sfn-aborted", "sfn-failed", "sfn-timed-out"], describe(failed)


def test_the_client_reads_the_executions_outcome(sfn_runs, monkeypatch):
    root, env, _ = sfn_runs
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status.forget()
    namespace(None)
    try:
        failed, done, running = (Run(f"SfnFlow/sfn-{k}") for k in ("timed-out", "succeeded", "running"))
        assert (failed.status, failed.finished, failed.successful) == ("failed", True, False)
        assert failed.error.startswith("its Step Functions execution ended TIMED_OUT")
        assert (done.status, done.finished, done.successful) == ("succeeded", True, True)
        assert (running.status, running.finished, running.finished_at) == ("running", False, None)
    finally:
        default_namespace()
        client_metadata(None)


def test_unreachable_step_functions_reads_running_quickly_and_records_nothing(sfn_runs, executed):
    root, env, _ = sfn_runs
    started = time.monotonic()
    proc = mfc(None, "runs", "SfnFlow", "--json", env={**env, "MFC_AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 0, describe(proc)
    assert {r["status"] for r in json.loads(proc.stdout)} == {"running"}
    assert time.monotonic() - started < 15
    keys = [f"SfnFlow/sfn-{outcome}/_status.json" for outcome in DEFINITIONS]
    assert _store(executed, root).exists_many(keys) == set()


def test_the_region_comes_from_the_execution_arn():
    where = status._where("arn:aws:states:eu-west-1:1:execution:M:e", Config({"aws_region": REGION}))
    assert where[0] == "eu-west-1"


def test_a_local_resume_takes_an_aborted_execution_as_ended_and_a_running_one_as_running(sfn_runs, executed, tmp_path):
    from mfc.runner.start import start_run
    from mfc.stores.artifacts import ArtifactStore

    root, env, arns = sfn_runs
    blobs = _store(executed, root)
    meta = BlobMetadata(blobs)
    for outcome in ("aborted", "running"):  # as the start state records them
        start_run(meta, ArtifactStore(blobs, "LinearFlow"), {"user": "prod", "tags": [], "system_tags": ["user:prod"],
                                                             "driver": {"kind": "sfn", "execution": arns[outcome]}},
                  {}, run_id=f"sfn-{outcome}")
    linear = flow_path("linear")
    busy = mfc(None, "resume", linear, "--origin-run-id", "sfn-running", "-q", env=env)
    assert busy.returncode != 0 and "run LinearFlow/sfn-running is still running" in busy.stderr, describe(busy)
    ids = tmp_path / "rid"
    proc = mfc(None, "resume", linear, "--origin-run-id", "sfn-aborted", "--run-id-file", str(ids), "-q", env=env,
               timeout=120)
    assert proc.returncode == 0, describe(proc)
    assert meta.run("LinearFlow", ids.read_text().strip())["status"] == "succeeded"
    assert meta.state("LinearFlow", "sfn-aborted").status == "failed"  # recorded by the resume that asked
