"""The AWS Batch executor against the sandbox: a real moto server over HTTP whose Batch runs every
job as a container of the mfc base image on the local Docker engine, an S3 datastore in moto and
the sandbox's image registry (the base image is pushed there in the fixture).

Flows run through the real ``launch`` with the executor that ``batch_steps`` (the ``--batch``
wiring) returns. Tests that start containers are marked ``docker``; the checks before a run, the
RUNNABLE detector (moto never leaves a job RUNNABLE, so its describe answer is bent) and the log
reader need only the sandbox.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from docker_helpers import base_image_tag
from moto_server import free_ports

from mfc.exceptions import MfcError, RunFailed
from mfc.runner.batch_executor import BatchExecutor
from mfc.runner.batch_logs import LogFollower, call_with_backoff
from mfc.runner.batch_setup import batch_steps
from mfc.runner.taskspec import InputRef, TaskSpec

FLOWS = Path(__file__).parent / "flows_batch"
MFC = str(Path(sys.executable).with_name("mfc"))


# -- the sandbox and its images are fixtures of conftest.py ------------------------------------------
def _config(flags: dict[str, Any] | None = None, **env: str):
    from mfc.config import Config

    return Config(flags, env={**os.environ, **env})


def _client(service: str):
    from mfc.aws import client

    return client(service, _config())


# -- running flows ------------------------------------------------------------------------------
def _load(flow: str, where: Path) -> tuple[str, type, Any]:
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph

    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{flow}.py"
    shutil.copy(FLOWS / f"{flow}.py", path)  # its own project: the code package holds just this file
    flow_cls = flow_class(import_flow_file(str(path)), None, str(path))
    return str(path), flow_cls, load_graph(str(path), flow_cls.__name__)


def options(**values: Any) -> dict[str, Any]:
    """The settings the CLI's options give the config (``--batch``, ``--queue``...), quiet."""
    from mfc.config import config_flags

    return config_flags({"quiet": True, **values})


def _batch_steps(path: str, flow_cls: type, graph: Any, config: Any) -> Any:
    """``batch_steps`` as ``launch`` calls it, for a run with no ``--with``."""
    from mfc.runner.launch import LaunchOptions
    from mfc.runner.policy import step_policies

    return batch_steps(path, flow_cls.__name__, graph, config, LaunchOptions(),
                       step_policies(flow_cls, list(graph.nodes)))


def _executor(config: Any, image: str, cls: type = BatchExecutor, **tuning: float) -> BatchExecutor:
    from mfc.runner.settings import BatchSettings

    return cls(config, BatchSettings.from_config(config, image, **tuning))


def run_flow(flow: str, where: Path, opts: dict[str, Any], config: Any = None) -> SimpleNamespace:
    """``mfc run flow.py --batch ...`` through launch(), as the CLI does."""
    from mfc.runner.launch import LaunchOptions, launch

    path, flow_cls, graph = _load(flow, where)
    config = config or _config(opts)
    run_id_file = where / "run_id"
    launch_options = LaunchOptions(run_id_file=str(run_id_file))
    t0 = time.monotonic()
    error = None
    try:
        launch(path, flow_cls, graph, [], config, launch_options)
    except RunFailed as exc:
        error = exc
    executor = launch_options.executors.get("batch")
    steps = sorted((s for s, e in launch_options.executor_for_step.items() if e == "batch"), key=list(graph.nodes).index)
    return SimpleNamespace(flow=flow_cls.__name__, run_id=run_id_file.read_text(), error=error, steps=steps,
                           executor=executor, seconds=time.monotonic() - t0, root=config.datastore_root)


def artifacts_by_step(root: str, flow: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every task's (public) artifacts, per step, in a run-independent order."""
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.records import TaskRecords

    blobs = open_blob_store(root)
    records, store = TaskRecords(blobs, flow), ArtifactStore(blobs, flow)
    found: dict[str, list[dict[str, Any]]] = {}
    for step in records.steps(run_id):
        tasks = []
        for task in records.tasks(run_id, step):
            record = records.latest(run_id, step, task)
            assert record["status"] == "ok", record
            tasks.append({name: store.load(ref[0]) for name, ref in record["artifacts"].items()
                          if not name.startswith("_")})
        found[step] = sorted(tasks, key=lambda t: json.dumps(t, sort_keys=True, default=repr))
    return found


def mfc_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MFC, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))


# -- checks before a run (sandbox only) ----------------------------------------------------------
def test_queue_that_does_not_exist_is_named_with_the_existing_ones(sandbox, tmp_path):
    path, flow_cls, graph = _load("linear5", tmp_path)
    with pytest.raises(MfcError, match=r"job queue 'nope' does not exist \(queues: mfc-cpu, mfc-gpu\)"):
        _batch_steps(path, flow_cls, graph, _config(options(batch="*", queue="nope", image="x:1")))


def test_gpu_request_on_a_cpu_only_queue_is_refused_before_submitting(sandbox, tmp_path):
    path, flow_cls, graph = _load("mixed", tmp_path)
    before = len(_client("batch").list_jobs(jobQueue="mfc-cpu").get("jobSummaryList", []))
    with pytest.raises(MfcError, match=r"step train: job queue mfc-cpu has no compute environment with GPU "
                                       r"instances \(instance types: optimal\)"):
        _batch_steps(path, flow_cls, graph, _config(options(queue="mfc-cpu", image="x:1")))
    assert len(_client("batch").list_jobs(jobQueue="mfc-cpu").get("jobSummaryList", [])) == before


def test_local_datastore_missing_image_and_unreachable_aws_are_clear_errors(sandbox, tmp_path):
    path, flow_cls, graph = _load("linear5", tmp_path)
    with pytest.raises(MfcError, match="Batch jobs cannot reach the local datastore .*s3://"):
        _batch_steps(path, flow_cls, graph,
                     _config(options(batch="*", image="x:1"), MFC_DATASTORE_ROOT=str(tmp_path / "ds")))
    missing = f"127.0.0.1:{sandbox.registry_port}/never-pushed:1"
    with pytest.raises(MfcError, match=f"image {missing} is not in its registry.*docker push"):
        _batch_steps(path, flow_cls, graph, _config(options(batch="*", image=missing)))
    closed = free_ports(1)[0]
    t0 = time.monotonic()
    with pytest.raises(MfcError, match=f"cannot reach AWS Batch at http://127.0.0.1:{closed}.*mfc sandbox up"):
        _batch_steps(path, flow_cls, graph, _config(options(batch="*", image="x:1"),
                                                    MFC_AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed}"))
    assert time.monotonic() - t0 < 15  # fails fast, no long retry loop
    with pytest.raises(MfcError, match="--queue needs --batch"):
        _batch_steps(path, flow_cls, graph, _config(options(queue="mfc-cpu")))
    # a queue from the environment (or a profile) is a preference: no error without a Batch step
    assert _batch_steps(path, flow_cls, graph, _config(options(), MFC_BATCH_QUEUE="mfc-cpu")) == (None, [])


def test_no_credentials_for_real_aws_is_a_clear_error(sandbox, tmp_path, monkeypatch):
    path, flow_cls, graph = _load("linear5", tmp_path)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = _config(options(batch="*", image="x:1"), MFC_PROFILE="default",
                     MFC_DATASTORE_ROOT="s3://some-bucket/mfc", MFC_BATCH_QUEUE="q")
    with pytest.raises(MfcError, match="no AWS credentials to call AWS Batch.*mfc sandbox up"):
        _batch_steps(path, flow_cls, graph, config)


def test_job_definitions_are_registered_once_and_reused(sandbox):
    from mfc.runner.batch_jobs import job_definition

    first = _executor(_config(), "reuse-test:1")
    settings = first.settings_for("start", {"cpu": 3})
    arn = first._definition("ReuseFlow", settings)
    assert first._definition("ReuseFlow", settings) == arn
    second = _executor(_config(), "reuse-test:1")  # a later run: found by name, not registered again
    assert second._definition("ReuseFlow", second.settings_for("start", {"cpu": 3})) == arn
    name = job_definition("ReuseFlow", settings)["jobDefinitionName"]
    found = _client("batch").describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    assert [d["revision"] for d in found] == [1]
    props = found[0]["containerProperties"]
    assert {"type": "VCPU", "value": "3"} in props["resourceRequirements"]
    assert ":role/mfc-sandbox-JobRole-" in props["jobRoleArn"]  # the template's JobRole in stack mfc-sandbox
    assert found[0]["retryStrategy"] == {"attempts": 1}
    for executor in (first, second):
        executor.close()


def _spec(root: str, **extra: Any) -> TaskSpec:
    fields = dict(flow_file="/nowhere/flow.py", flow_name="StuckFlow", step="start", run_id="1", task_id="1",
                  datastore_root=root, inputs=[InputRef("_parameters", "0", 0)], code_package={"sha256": "0" * 64})
    return TaskSpec(**{**fields, **extra})


class _AlwaysRunnable(BatchExecutor):
    """Reports every job as RUNNABLE, whatever moto says (moto runs jobs at once)."""

    def describe_jobs(self, job_ids):
        return {job_id: {**desc, "status": "RUNNABLE"} for job_id, desc in super().describe_jobs(job_ids).items()}


def test_job_stuck_in_runnable_is_terminated_with_the_likely_reasons(sandbox, tmp_path):
    config = _config()
    executor = _executor(config, base_image_tag(), _AlwaysRunnable, runnable_timeout=1.0, poll_max=0.5)
    executor.events = queue.Queue()
    log = tmp_path / "out"
    handle = executor.submit(_spec(config.datastore_root), str(log), str(tmp_path / "err"))
    try:
        event = executor.events.get(timeout=30)
    finally:
        executor.close()
    assert event.key == handle.key and event.code == 1
    assert f"Batch job {handle.extra['job_id']} of step start stayed RUNNABLE for" in event.error
    assert "on queue mfc-cpu (asks for 1 vCPU, 4096 MiB)" in event.error
    assert "mfc-cpu look usable" in event.error and "MFC_BATCH_RUNNABLE_TIMEOUT" in event.error
    job = _client("batch").describe_jobs(jobs=[handle.extra["job_id"]])["jobs"][0]
    assert job["statusReason"].startswith("mfc: stayed RUNNABLE for")  # terminate_job reached Batch


def test_close_terminates_the_jobs_still_running(sandbox, tmp_path):
    config = _config()
    executor = _executor(config, base_image_tag(), _AlwaysRunnable, runnable_timeout=600)
    handle = executor.submit(_spec(config.datastore_root, task_id="2"), str(tmp_path / "o"), str(tmp_path / "e"))
    deadline = time.monotonic() + 20
    while "job_id" not in handle.extra and time.monotonic() < deadline:
        time.sleep(0.05)
    assert executor.pending() == [handle.extra["job_id"]]
    executor.close()
    job = _client("batch").describe_jobs(jobs=[handle.extra["job_id"]])["jobs"][0]
    assert job["statusReason"] == "mfc: the run was stopped"


def test_a_large_spec_travels_through_the_datastore(sandbox):
    from mfc.stores.blob import open_blob_store

    config = _config()
    executor = _executor(config, "x:1")
    spec = _spec(config.datastore_root, inputs=[InputRef("square", str(i), 0) for i in range(1000)])
    small = _spec(config.datastore_root)
    assert executor.spec_argument(small) == small.to_json()
    argument = executor.spec_argument(spec)
    url = f"@{config.datastore_root}/StuckFlow/1/start/1/0.spec.json"
    assert argument == url
    root, _, key = url[1:].rpartition("/")  # how the task entrypoint is to read it (see the report)
    assert open_blob_store(root).get_bytes(key).decode() == spec.to_json()
    kwargs = executor.submit_arguments(spec, executor.settings_for("start", {}), "jd")
    assert kwargs["containerOverrides"]["command"][-2:] == ["--spec", url]
    executor.close()


def test_task_environment_has_endpoints_and_no_host_credentials(sandbox, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOSTSECRET")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    config = _config()
    env = _executor(config, "x:1").environment(_spec(config.datastore_root, environment={"MINE": "1"}))
    assert env["MFC_AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{sandbox.port}" and env["MINE"] == "1"
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["MFC_DATASTORE_ROOT"] == config.datastore_root
    aws = _config(MFC_PROFILE="default", MFC_BATCH_QUEUE="q")  # real AWS: the job role gives credentials
    env = _executor(aws, "x:1").environment(_spec("s3://b/p"))
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "host-secret" not in json.dumps(env)


# -- CloudWatch logs ----------------------------------------------------------------------------
def test_log_follower_pages_through_a_stream_and_picks_up_new_events(sandbox, tmp_path):
    logs = _client("logs")
    logs.create_log_group(logGroupName="/test/follower")
    logs.create_log_stream(logGroupName="/test/follower", logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/test/follower", logStreamName="s",
                        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(7)])
    out = tmp_path / "stdout"
    follower = LogFollower(logs, "s", str(out), group="/test/follower", page_limit=3)
    assert follower.poll() == 7 and follower.poll() == 0
    logs.put_log_events(logGroupName="/test/follower", logStreamName="s",
                        logEvents=[{"timestamp": now + 10 + i, "message": f"more {i}"} for i in range(2)])
    assert follower.poll() == 2
    assert out.read_text().splitlines() == [f"line {i}" for i in range(7)] + ["more 0", "more 1"]
    assert LogFollower(logs, "not-yet", str(tmp_path / "none"), group="/test/follower").poll() == 0


def test_throttling_is_waited_out_with_backoff():
    from botocore.exceptions import ClientError

    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetLogEvents")
        return "ok"

    assert call_with_backoff(flaky, sleep=sleeps.append) == "ok"
    assert sleeps == [0.5, 1.0, 2.0]
    sleeps.clear()
    calls.clear()
    with pytest.raises(ClientError):
        call_with_backoff(flaky, max_wait=1.0, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0]  # gave up once a second of waiting was spent
    with pytest.raises(ValueError):
        call_with_backoff(lambda: (_ for _ in ()).throw(ValueError("not throttling")), sleep=sleeps.append)


# -- whole runs (containers) --------------------------------------------------------------------
@pytest.mark.docker
def test_flow_with_branch_foreach_and_retry_runs_as_batch_jobs_like_locally(sandbox, images, tmp_path):
    run = run_flow("shapes", tmp_path / "batch", options(batch="*", image=images["cpu"]))
    assert run.error is None, run.error
    assert set(run.steps) == {"start", "a", "b", "join_ab", "square", "join_items", "end"}
    local = run_flow("shapes", tmp_path / "local", options(),
                     _config(options(), MFC_DATASTORE_ROOT=str(tmp_path / "local-ds")))
    assert local.error is None and local.executor is None
    on_batch = artifacts_by_step(run.root, run.flow, run.run_id)
    assert on_batch == artifacts_by_step(local.root, local.flow, local.run_id)
    assert on_batch["end"][0]["total"] == 14 and on_batch["end"][0]["b_attempt"] == 1
    assert len(run.executor.submitted) == 10  # 9 tasks, one of them twice
    batch = _client("batch")
    jobs = {j["jobName"]: j for j in batch.describe_jobs(jobs=run.executor.submitted)["jobs"]}
    first_b = next(j for name, j in jobs.items() if name.startswith("BatchShapesFlow-b-") and name.endswith("-0"))
    assert first_b["status"] == "FAILED" and first_b["container"]["exitCode"] == 1
    assert first_b["tags"] == {"mfc:flow": "BatchShapesFlow", "mfc:run": run.run_id, "mfc:step": "b",
                               "mfc:task": first_b["tags"]["mfc:task"], "mfc:attempt": "0"}
    assert sum(j["status"] == "SUCCEEDED" for j in jobs.values()) == 9
    task = first_b["tags"]["mfc:task"]
    first = mfc_cli("logs", "--attempt", "0", f"BatchShapesFlow/{run.run_id}/b/{task}")
    assert first.returncode == 0, first.stderr
    assert "b attempt 0" in first.stdout and "RuntimeError: b fails on its first attempt" in first.stdout
    second = mfc_cli("logs", f"BatchShapesFlow/{run.run_id}/b/{task}")
    assert second.stdout == "b attempt 1\n"
    whole = mfc_cli("logs", f"BatchShapesFlow/{run.run_id}")
    assert "square 3 -> 9" in whole.stdout and "total 14" in whole.stdout
    start_log = mfc_cli("logs", f"BatchShapesFlow/{run.run_id}/start/start").stdout
    assert start_log.startswith("start on ") and "no batch job" not in start_log
    print(f"\nshapes flow, 9 tasks / 10 Batch jobs: {run.seconds:.1f}s; locally {local.seconds:.1f}s; "
          f"image push {images['push_seconds']}s; sandbox up {sandbox.up_seconds:.1f}s")


@pytest.mark.docker
def test_one_gpu_batch_step_among_local_steps(sandbox, images, tmp_path):
    run = run_flow("mixed", tmp_path, options(image=images["cpu"], gpu_image=images["gpu"]))
    assert run.error is None, run.error
    assert run.steps == ["train"] and len(run.executor.submitted) == 1
    values = {step: tasks[0] for step, tasks in artifacts_by_step(run.root, run.flow, run.run_id).items()}
    job_id = run.executor.submitted[0]
    assert values["start"]["where_start"] is None and values["end"]["where_end"] is None  # local processes
    assert values["train"]["where_train"] == job_id and values["end"]["result"] == 42
    batch = _client("batch")
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["jobQueue"].endswith("job-queue/mfc-gpu")
    definition = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"][0]
    assert definition["containerProperties"]["image"] == images["gpu"]
    assert sorted(definition["containerProperties"]["resourceRequirements"], key=lambda r: r["type"]) == [
        {"type": "GPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}, {"type": "VCPU", "value": "2"}]
    assert mfc_cli("logs", f"BatchMixedFlow/{run.run_id}/train/train").stdout == f"trained on {job_id}\n"


def test_gpu_flag_gives_every_batch_step_the_gpu_image_queue_and_requirement(sandbox, tmp_path):
    path, flow_cls, graph = _load("linear5", tmp_path)
    opts = options(batch="*", gpu=1, image="cpu-only-local:1", gpu_image="gpu-local:1")
    executor, steps = _batch_steps(path, flow_cls, graph, _config(opts))
    try:
        assert steps == ["start", "two", "three", "four", "end"]
        settings = executor.settings_for("three", {})
        assert (settings.image, settings.queue, settings.gpu) == ("gpu-local:1", "mfc-gpu", 1)
        kwargs = executor.submit_arguments(_spec("s3://mfc-sandbox/mfc"), settings, "jd")
        assert {"type": "GPU", "value": "1"} in kwargs["containerOverrides"]["resourceRequirements"]
    finally:
        executor.close()


@pytest.mark.docker
def test_timeout_terminates_the_batch_job(sandbox, images, tmp_path):
    run = run_flow("sleepy", tmp_path, options(batch="*", image=images["cpu"]))
    assert isinstance(run.error, RunFailed)
    assert "timed out after 4s (@timeout)" in str(run.error)
    nap = _client("batch").describe_jobs(jobs=run.executor.submitted[1:])["jobs"][0]
    assert nap["status"] == "FAILED" and nap["statusReason"] == "mfc: the task was stopped"
    assert run.executor.pending() == []
    assert run.seconds < 40


@pytest.mark.docker
def test_a_job_queued_longer_than_its_timeout_is_not_timed_out(sandbox, images, tmp_path, monkeypatch):
    """The start step's job waits in Batch's queue (PENDING behind a 14 s job it depends on) longer
    than its @timeout(seconds=8), then runs for 1 s: it is not timed out (the deadline counts from
    the job's start), and its record says how long it was queued."""
    batch = _client("batch")
    definition = batch.register_job_definition(
        jobDefinitionName="mfc-test-blocker", type="container",
        containerProperties={"image": images["cpu"], "command": ["python", "-c", "import time; time.sleep(14)"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "512"}]})["jobDefinitionArn"]
    blocker = batch.submit_job(jobName="blocker", jobQueue="mfc-cpu", jobDefinition=definition)["jobId"]
    submit_arguments = BatchExecutor.submit_arguments

    def held(self, spec, settings, definition):
        kwargs = submit_arguments(self, spec, settings, definition)
        if spec.step == "start":
            kwargs["dependsOn"] = [{"jobId": blocker}]
        return kwargs

    monkeypatch.setattr(BatchExecutor, "submit_arguments", held)
    run = run_flow("held", tmp_path, options(batch="*", image=images["cpu"]))
    assert run.error is None, run.error
    from mfc.stores.blob import open_blob_store
    from mfc.stores.records import TaskRecords

    records = TaskRecords(open_blob_store(run.root), run.flow)
    [task] = records.tasks(run.run_id, "start")
    record = records.latest(run.run_id, "start", task)
    assert record["status"] == "ok", record
    assert record["queued_seconds"] > 8, record  # longer than the step's @timeout
    assert record["started_at"] - record["submitted_at"] == pytest.approx(record["queued_seconds"], abs=0.01)
    job = batch.describe_jobs(jobs=[run.executor.submitted[0]])["jobs"][0]
    assert job["status"] == "SUCCEEDED" and job["dependsOn"] == [{"jobId": blocker}]


@pytest.mark.docker
def test_five_step_flow_end_to_end_time(sandbox, images, tmp_path):
    run = run_flow("linear5", tmp_path, options(batch="*", image=images["cpu"]))
    assert run.error is None, run.error
    values = artifacts_by_step(run.root, run.flow, run.run_id)
    assert values["end"][0]["n"] == 5 and len(run.executor.submitted) == 5
    jobs = _client("batch").describe_jobs(jobs=run.executor.submitted)["jobs"]
    inside = sum(j["stoppedAt"] - j["startedAt"] for j in jobs) / 1000
    print(f"\n5-step --batch flow in the sandbox: {run.seconds:.1f}s ({run.seconds / 5:.1f}s a step; "
          f"{inside:.1f}s between the jobs' startedAt and stoppedAt)")


# -- @secrets and S3(run=self) in containers -------------------------------------------------------
@pytest.mark.docker
def test_secrets_and_run_s3_in_a_local_container_and_batch_jobs(sandbox, images, tmp_path):
    """One run: ``start`` in a local container, ``middle`` and ``end`` as Batch jobs. The secret
    (in moto's Secrets Manager) is the decorated steps' environment on both backends; each step
    reads what the one before put under the run's ``S3(run=self)`` prefix."""
    password = "pw-" + os.urandom(8).hex()
    sm = _client("secretsmanager")
    sm.create_secret(Name="mfc-test/db-creds", SecretString=json.dumps({"DB_USER": "alice", "DB-PASSWORD": password}))
    try:
        run = run_flow("secrets_s3", tmp_path, options(local_docker="start", batch="middle,end", image=images["cpu"]))
    finally:
        sm.delete_secret(SecretId="mfc-test/db-creds", ForceDeleteWithoutRecovery=True)
    assert run.error is None, run.error
    assert run.steps == ["middle", "end"] and len(run.executor.submitted) == 2
    values = {step: tasks[0] for step, tasks in artifacts_by_step(run.root, run.flow, run.run_id).items()}
    assert values["start"]["start_user"] == "alice" and values["start"]["start_job"] is None  # a local container
    middle, end = values["middle"], values["end"]
    assert (middle["middle_user"], middle["middle_password_length"]) == ("alice", len(password))
    assert [middle["middle_job"], end["end_job"]] == run.executor.submitted
    assert middle["from_start"] == "start saw alice" and end["from_middle"] == "middle saw alice"
    assert end["end_user"] is None
    bucket, _, prefix = run.root.removeprefix("s3://").partition("/")
    keys = [o["Key"] for o in _client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert f"{prefix}/data/{run.flow}/{run.run_id}/from-middle.txt" in keys
    logs = mfc_cli("logs", f"{run.flow}/{run.run_id}")
    assert logs.returncode == 0 and password not in logs.stdout + logs.stderr
    print(f"\n@secrets + S3(run=self), 1 local container + 2 Batch jobs: {run.seconds:.1f}s")


@pytest.mark.docker
@pytest.mark.parametrize("backend", ["batch", "local_docker"])
def test_a_missing_secret_fails_the_task_with_one_line_naming_it(sandbox, images, tmp_path, backend):
    """On Batch and in a local container (with a local datastore too: the container still reaches
    moto's Secrets Manager) the run fails with the entrypoint's one line, no traceback."""
    config = None if backend == "batch" else _config(options(local_docker="*", image=images["cpu"]),
                                                     MFC_DATASTORE_ROOT=str(tmp_path / "ds"))
    run = run_flow("secret_missing", tmp_path, options(**{backend: "start"}, image=images["cpu"]), config)
    assert isinstance(run.error, RunFailed)
    message = str(run.error)
    assert ("SecretsError: @secrets: secret 'mfc-test/no-such-secret' does not exist in AWS Secrets Manager "
            "(region us-east-1)") in message, message
    assert "Traceback" not in message
    log = mfc_cli("logs", "--datastore-root", run.root, f"{run.flow}/{run.run_id}/start")
    assert "error: @secrets: secret 'mfc-test/no-such-secret' does not exist" in log.stdout + log.stderr, log
    assert "Traceback" not in log.stdout + log.stderr
