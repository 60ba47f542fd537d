"""`mfc sandbox`: moto + an image registry as a local AWS, and the moto shims.

The first half needs nothing running: the shims' name translation, the profile editor, the pid
handling. The second half brings one sandbox up for the whole module (real detached processes
on free ports, a temporary state dir and ``MFC_CONFIG``), checks it over HTTP with boto3, runs
Batch jobs and Step Functions executions as real containers (``docker``-marked), pushes an image
to the registry, then takes everything down.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from docker_helpers import base_image_tag, docker_required, require_docker, require_image
from moto_server import free_ports

from mfc.aws import is_local_endpoint
from mfc.exceptions import MfcError
from mfc.sandbox import CREDENTIALS, procs, profile, registry
from mfc.sandbox.moto_shims import map_run_exceeds_tolerance, to_boto_request, to_sfn_response

# --- moto shims: ASL <-> boto names (no server) ------------------------------------------------


def test_submit_job_parameters_become_boto_names_recursively():
    params = {
        "JobName": "start", "JobQueue": "mfc-cpu", "JobDefinition": "jd",
        "ContainerOverrides": {
            "Command": ["python", "-c", "print(1)"],
            "Environment": [{"Name": "X", "Value": "1"}],
            "ResourceRequirements": [{"Type": "GPU", "Value": "1"}],
        },
        "Parameters": {"MyParam": "v"},
        "Tags": {"Owner": "me"},
        "RetryStrategy": {"Attempts": 2},
        "NotAnApiField": 1,
    }
    out = to_boto_request("batch", "submitJob", params)
    assert out is params  # in place, as moto's interpreter needs
    assert out == {
        "jobName": "start", "jobQueue": "mfc-cpu", "jobDefinition": "jd",
        "containerOverrides": {
            "command": ["python", "-c", "print(1)"],
            "environment": [{"name": "X", "value": "1"}],
            "resourceRequirements": [{"type": "GPU", "value": "1"}],
        },
        "parameters": {"MyParam": "v"},  # map keys are the user's
        "tags": {"Owner": "me"},
        "retryStrategy": {"attempts": 2},
        "NotAnApiField": 1,
    }


def test_operation_name_may_be_camel_pascal_or_snake_and_json_goes_into_strings():
    for action in ("submitJob", "SubmitJob", "submit_job"):
        assert to_boto_request("batch", action, {"JobName": "a"}) == {"jobName": "a"}
    out = to_boto_request("batch", "submitJob", {"Parameters": {"p": {"a": 1}}})
    assert out == {"parameters": {"p": '{"a":1}'}}  # a string-valued map gets JSON, like AWS
    with pytest.raises(KeyError):
        to_boto_request("batch", "noSuchCall", {})


def test_describe_jobs_response_gets_step_functions_names_in_place():
    job = {"jobId": "j1", "status": "SUCCEEDED", "container": {"exitCode": 0, "logStreamName": "s",
           "environment": [{"name": "A", "value": "1"}]}, "parameters": {"lower": "x"}, "tags": {"k": "v"}}
    response = {"jobs": [job], "ResponseMetadata": {"HTTPStatusCode": 200}}
    to_sfn_response("batch", "describe_jobs", response)
    assert response == {"Jobs": [job]}
    assert job == {"JobId": "j1", "Status": "SUCCEEDED", "Container": {"ExitCode": 0, "LogStreamName": "s",
                   "Environment": [{"Name": "A", "Value": "1"}]}, "Parameters": {"lower": "x"}, "Tags": {"k": "v"}}


@pytest.mark.parametrize("failed,total,count,pct,fails", [
    (0, 3, 0, 0.0, False), (1, 3, 0, 0.0, True), (1, 3, 1, 0.0, False), (2, 3, 1, 0.0, True),
    (1, 10, 0, 10.0, False), (2, 10, 0, 10.0, True), (2, 10, 5, 10.0, True),
])
def test_distributed_map_failure_threshold(failed, total, count, pct, fails):
    assert map_run_exceeds_tolerance(failed, total, count, pct) is fails


def test_local_endpoints_are_recognised():
    assert is_local_endpoint("http://127.0.0.1:5055") and is_local_endpoint("http://localhost:4566/")
    assert not is_local_endpoint(None) and not is_local_endpoint("https://s3.us-east-1.amazonaws.com")


# --- profile editing (no server) ---------------------------------------------------------------

USER_CONFIG = """\
# my settings
[profiles.default]
max_workers = 4  # four

[profiles.other]
user = "someone"
"""


def test_profile_is_merged_atomically_and_rewritten_in_place(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(USER_CONFIG)
    profile.write_profile(str(path), "sandbox", {"aws_region": "us-east-1", "max_workers": 2}, comment="Written by `mfc sandbox up`")
    text = path.read_text()
    assert text.startswith(USER_CONFIG)  # the user's lines, comments included, are untouched
    assert profile.read_profile(str(path), "sandbox") == {"aws_region": "us-east-1", "max_workers": 2}
    profile.write_profile(str(path), "sandbox", {"aws_region": "eu-west-1"}, comment="Written by `mfc sandbox up`")
    again = path.read_text()
    assert again.startswith(USER_CONFIG) and again.count("[profiles.sandbox]") == 1
    assert again.count("Written by") == 1
    assert profile.read_profile(str(path), "sandbox") == {"aws_region": "eu-west-1"}
    assert profile.read_profile(str(path), "other") == {"user": "someone"}
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary file left
    assert profile.remove_profile(str(path), "sandbox") is True
    assert path.read_text() == USER_CONFIG
    assert profile.remove_profile(str(path), "sandbox") is False


def test_profile_in_the_middle_keeps_what_follows(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[profiles.sandbox]\nuser = "old"\n\n[profiles.after]\nuser = "kept"\n')
    profile.write_profile(str(path), "sandbox", {"user": "new"})
    assert profile.read_profile(str(path), "after") == {"user": "kept"}
    assert profile.read_profile(str(path), "sandbox") == {"user": "new"}


def test_profile_file_is_created_and_a_broken_one_is_refused(tmp_path):
    path = tmp_path / "sub" / "config.toml"
    profile.write_profile(str(path), "sandbox", {"s3_endpoint_url": 'http://x/"q"'})
    assert profile.read_profile(str(path), "sandbox") == {"s3_endpoint_url": 'http://x/"q"'}
    broken = tmp_path / "broken.toml"
    broken.write_text("[profiles.default\n")
    with pytest.raises(MfcError, match="broken.toml"):
        profile.write_profile(str(broken), "sandbox", {"user": "x"})
    assert broken.read_text() == "[profiles.default\n"


# --- process handling (no server) --------------------------------------------------------------


def test_spawned_process_is_detached_checked_by_marker_and_stopped(tmp_path):
    marker = f"mfc-test-{os.getpid()}"
    cmd = [sys.executable, "-c", "import time; time.sleep(60)", marker]
    info = procs.spawn("sleeper", cmd, 0, str(tmp_path / "sleeper.log"), marker)
    try:
        assert procs.wait_until(info.alive, 5)
        assert os.getsid(info.pid) == info.pid  # its own session: it outlives our terminal
        assert not procs.is_alive(info.pid, "some-other-program")  # a reused pid is never trusted
        procs.write_pid(str(tmp_path), info)
        assert procs.read_pid(str(tmp_path), "sleeper") == info
        assert procs.stop(info.pid, marker, grace=2.0) is True
        assert not procs.is_alive(info.pid)  # gone, and not left as a zombie
        assert procs.stop(info.pid, marker) is False
    finally:
        if procs.is_alive(info.pid, marker):
            os.kill(info.pid, signal.SIGKILL)


def test_up_refuses_a_busy_port_and_equal_ports(tmp_path):
    from mfc.sandbox import control

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(MfcError, match=f"port {port} on 127.0.0.1 is in use by another program"):
            control.up(str(tmp_path / "state"), port=port, registry_port=free_ports(1)[0])
    with pytest.raises(MfcError, match="pick two different ports"):
        control.up(str(tmp_path / "state"), port=port, registry_port=port)
    assert sorted(os.listdir(tmp_path / "state")) == []  # nothing was started or written


# --- a real sandbox, for the rest of the module ------------------------------------------------


class Sandbox:
    def __init__(self, tmp: Path):
        self.port, self.registry_port = free_ports(2)
        self.state_dir = str(tmp / "state")
        self.config = tmp / "config.toml"
        self.config.write_text(USER_CONFIG)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MFC_")}
        self.env.update(CREDENTIALS, MFC_CONFIG=str(self.config))

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "mfc.cli.sandbox", *args, "--dir", self.state_dir]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def up(self) -> subprocess.CompletedProcess:
        return self.cli("up", "--port", str(self.port), "--registry-port", str(self.registry_port))

    def client(self, service: str):
        from mfc.sandbox.resources import client

        return client(service, self.port)

    def pids(self) -> dict[str, int]:
        return {name: procs.read_pid(self.state_dir, name).pid for name in ("moto", "registry")}


def _registry_available() -> None:
    if registry.find_binary() or (os.geteuid() == 0 and os.path.exists("/usr/bin/apt-get")):
        return
    reason = f"docker-registry is not installed: {registry.INSTALL_HINT}"
    if docker_required():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    _registry_available()
    box = Sandbox(tmp_path_factory.mktemp("sandbox"))
    t0 = time.monotonic()
    box.up_output = box.up().stdout
    box.up_seconds = time.monotonic() - t0
    box.first_pids = box.pids()
    yield box
    box.cli("down", check=False)
    for name in ("moto", "registry"):  # whatever happened, leave nothing running
        info = procs.read_pid(box.state_dir, name)
        if info is not None and info.alive():
            os.kill(info.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def engine():
    client = require_docker()
    yield client
    client.close()


@pytest.fixture(scope="module")
def job_definition(sandbox, engine):
    image = base_image_tag()
    require_image(engine, image)
    batch = sandbox.client("batch")
    return batch.register_job_definition(
        jobDefinitionName="sandbox-test", type="container",
        containerProperties={"image": image, "command": ["python", "-c", "print(1)"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]},
    )["jobDefinitionArn"]


def _wait_job(batch, job_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"Batch job {job_id} did not finish within {timeout}s: {job['status']}")


def _run_execution(sandbox, definition: dict, payload: dict, timeout: float = 120) -> dict:
    sfn = sandbox.client("stepfunctions")
    role = profile.read_profile(str(sandbox.config), "sandbox")["sfn_role"]
    name = f"sm-{time.monotonic_ns()}"
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.3)
    raise AssertionError(f"execution {name} still running after {timeout}s")


def test_up_starts_healthy_components_and_writes_the_profile(sandbox):
    assert "moto: started" in sandbox.up_output and "registry: started" in sandbox.up_output
    assert "export MFC_PROFILE=sandbox AWS_ACCESS_KEY_ID=testing" in sandbox.up_output
    status = json.loads(sandbox.cli("status", "--json").stdout)
    assert status["healthy"] is True
    assert {c["name"]: (c["healthy"], c["port"]) for c in status["components"]} == {
        "moto": (True, sandbox.port), "registry": (True, sandbox.registry_port)}
    assert sandbox.config.read_text().startswith(USER_CONFIG)  # the user's profiles stay
    values = profile.read_profile(str(sandbox.config), "sandbox")
    assert values["aws_endpoint_url"] == values["s3_endpoint_url"] == f"http://127.0.0.1:{sandbox.port}"
    assert values["image_registry"] == f"127.0.0.1:{sandbox.registry_port}"
    assert values["datastore_root"] == "s3://mfc-sandbox/mfc"
    assert (values["batch_queue"], values["batch_gpu_queue"]) == ("mfc-cpu", "mfc-gpu")
    assert ":role/mfc-sandbox-JobRole-" in values["batch_job_role"]  # the template's JobRole in stack mfc-sandbox
    assert "aws_stack" not in values


def test_profile_is_a_valid_mfc_config(sandbox, monkeypatch):
    from mfc.config import Config

    monkeypatch.setenv("MFC_CONFIG", str(sandbox.config))
    config = Config(env={"MFC_PROFILE": "sandbox"})
    assert config.datastore_root == "s3://mfc-sandbox/mfc"
    assert config["aws_endpoint_url"] == f"http://127.0.0.1:{sandbox.port}"
    assert config.sources["sfn_role"].startswith("profile sandbox")


def test_resources_exist_through_boto3(sandbox):
    sandbox.client("s3").head_bucket(Bucket="mfc-sandbox")
    batch = sandbox.client("batch")
    queues = {q["jobQueueName"]: q for q in batch.describe_job_queues()["jobQueues"]}
    assert {n: (queues[n]["state"], queues[n]["status"]) for n in ("mfc-cpu", "mfc-gpu")} == {
        "mfc-cpu": ("ENABLED", "VALID"), "mfc-gpu": ("ENABLED", "VALID")}
    ces = {c["computeEnvironmentName"]: c for c in batch.describe_compute_environments()["computeEnvironments"]}
    assert "g4dn.xlarge" in ces["mfc-gpu"]["computeResources"]["instanceTypes"]
    assert ces["mfc-cpu"]["status"] == "VALID"
    iam = sandbox.client("iam")
    values = profile.read_profile(str(sandbox.config), "sandbox")
    for key in ("batch_job_role", "sfn_role", "events_role"):
        assert iam.get_role(RoleName=values[key].rsplit("/", 1)[1])["Role"]["Arn"] == values[key]
    groups = sandbox.client("logs").describe_log_groups(logGroupNamePrefix="/aws/batch/job")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/aws/batch/job"]


def test_resources_come_from_the_template_deployed_into_moto(sandbox):
    stack = sandbox.client("cloudformation").describe_stacks(StackName="mfc-sandbox")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["Description"].startswith("mfc:")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    values = profile.read_profile(str(sandbox.config), "sandbox")
    assert (outputs["DatastoreRoot"], outputs["BatchQueue"], outputs["SfnRole"], outputs["EventsRole"]) == (
        values["datastore_root"], values["batch_queue"], values["sfn_role"], values["events_role"])
    assert outputs["ImageRegistry"] != values["image_registry"]  # images go to the sandbox's own registry


@pytest.mark.docker
def test_batch_job_runs_as_a_container_and_logs_to_cloudwatch(sandbox, job_definition):
    batch = sandbox.client("batch")
    endpoint = f"http://127.0.0.1:{sandbox.port}"
    code = ("import os, urllib.request; "
            "status = urllib.request.urlopen(os.environ['EP'] + '/moto-api/config').status; "
            "print('sandbox says', status, os.environ['GREETING'])")
    job = batch.submit_job(jobName="hello-job", jobQueue="mfc-cpu", jobDefinition=job_definition,
                           containerOverrides={"command": ["python", "-c", code],
                                               "environment": [{"name": "EP", "value": endpoint},
                                                               {"name": "GREETING", "value": "hi"}]})
    done = _wait_job(batch, job["jobId"])
    assert done["status"] == "SUCCEEDED", done
    assert done["container"]["exitCode"] == 0  # the describe shim
    names = [e["name"] for e in done["container"]["environment"]]
    assert len(names) == len(set(names))  # the describe shim: no growing AWS_BATCH_JOB_ID list
    events = sandbox.client("logs").get_log_events(logGroupName="/aws/batch/job",
                                                   logStreamName=done["container"]["logStreamName"])["events"]
    # The container reached the server over the host network (MOTO_DOCKER_NETWORK_MODE=host).
    assert [e["message"] for e in events] == ["sandbox says 201 hi"]


@pytest.mark.docker
def test_failed_batch_job_reports_its_exit_code(sandbox, job_definition):
    batch = sandbox.client("batch")
    job = batch.submit_job(jobName="exit-three", jobQueue="mfc-gpu", jobDefinition=job_definition,
                           containerOverrides={"command": ["python", "-c", "raise SystemExit(3)"]})
    done = _wait_job(batch, job["jobId"])
    assert (done["status"], done["container"]["exitCode"]) == ("FAILED", 3)


def _batch_task(job_definition: str, name: str, command, **extra) -> dict:
    overrides = {"Command.$": command} if isinstance(command, str) else {"Command": command}
    return {"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync",
            "Parameters": {"JobName": name, "JobQueue": "mfc-cpu", "JobDefinition": job_definition,
                           "ContainerOverrides": overrides},
            **extra}


@pytest.mark.docker
def test_step_functions_runs_batch_sync_with_asl_parameter_names(sandbox, job_definition):
    task = _batch_task(job_definition, "sfn-step", ["python", "-c", "import os; print(os.environ['X'])"])
    task["Parameters"]["ContainerOverrides"]["Environment"] = [{"Name": "X", "Value.$": "$.x"}]
    task["ResultSelector"] = {"JobId.$": "$.JobId", "Status.$": "$.Status", "Exit.$": "$.Container.ExitCode",
                              "Stream.$": "$.Container.LogStreamName"}
    done = _run_execution(sandbox, {"StartAt": "Step", "States": {"Step": {**task, "End": True}}}, {"x": "42"})
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert (output["Status"], output["Exit"]) == ("SUCCEEDED", 0)
    events = sandbox.client("logs").get_log_events(logGroupName="/aws/batch/job", logStreamName=output["Stream"])
    assert [e["message"] for e in events["events"]] == ["42"]


@pytest.mark.docker
def test_step_functions_retries_a_failed_job_then_fails_with_task_failed(sandbox, job_definition):
    retry = [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1, "IntervalSeconds": 1}]
    task = _batch_task(job_definition, "always-fails", ["python", "-c", "raise SystemExit(1)"], Retry=retry)
    done = _run_execution(sandbox, {"StartAt": "Step", "States": {"Step": {**task, "End": True}}}, {})
    assert (done["status"], done.get("error")) == ("FAILED", "States.TaskFailed")
    jobs = sandbox.client("batch").list_jobs(jobQueue="mfc-cpu", jobStatus="FAILED")["jobSummaryList"]
    assert sum(j["jobName"] == "always-fails" for j in jobs) == 2  # the retry shim: a real second attempt


@pytest.mark.docker
def test_step_functions_maps_fail_like_aws(sandbox, job_definition):
    sandbox.client("s3").put_object(Bucket="mfc-sandbox", Key="test/items.json",
                                    Body=json.dumps([{"i": 1}, {"i": 2}, {"i": 3}]).encode())
    command = "States.Array('python', '-c', States.Format('raise SystemExit({} == 2)', $.i))"
    item = {"StartAt": "Item", "States": {"Item": {**_batch_task(job_definition, "map-item", command), "End": True}}}
    distributed = {"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "End": True, "MaxConcurrency": 3,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": "mfc-sandbox", "Key": "test/items.json"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **item}}}}
    done = _run_execution(sandbox, distributed, {})
    assert (done["status"], done.get("error")) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    inline = {"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "End": True, "ItemsPath": "$.items",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **item}}}}
    done = _run_execution(sandbox, inline, {"items": [{"i": 1}, {"i": 2}]})
    assert (done["status"], done.get("error")) == ("FAILED", "States.TaskFailed")


@pytest.mark.docker
def test_registry_accepts_a_push_and_lists_it(sandbox, engine):
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY hello /hello\n"), ("hello", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    repo = f"127.0.0.1:{sandbox.registry_port}/test"
    engine.images.build(fileobj=context, custom_context=True, tag=f"{repo}:1", rm=True)
    try:
        for line in engine.images.push(repo, tag="1", stream=True, decode=True):
            assert "error" not in line, line
    finally:
        engine.images.remove(f"{repo}:1", force=True)
    assert "test" in registry.catalog(sandbox.registry_port)
    assert registry.tags(sandbox.registry_port, "test") == ["1"]


def test_up_again_is_idempotent(sandbox):
    before = sandbox.config.read_text()
    t0 = time.monotonic()
    out = sandbox.up().stdout
    assert time.monotonic() - t0 < 30
    assert "moto: already running" in out and "registry: already running" in out
    assert sandbox.pids() == sandbox.first_pids
    assert sandbox.config.read_text() == before


def test_up_on_another_port_while_running_is_refused(sandbox):
    from mfc.sandbox import control

    with pytest.raises(MfcError, match=f"already runs its moto server on port {sandbox.port}"):
        control.up(sandbox.state_dir, port=sandbox.port + 1, registry_port=sandbox.registry_port)


def test_down_stops_everything_and_forget_removes_the_profile(sandbox):
    pids = sandbox.pids()
    leftover = _start_long_job(sandbox) if _engine_ok() else None  # a job container moto leaves behind
    out = sandbox.cli("down").stdout
    assert "moto: stopped" in out and "registry: stopped" in out
    assert "profile 'sandbox' stays" in out
    for pid in pids.values():
        assert not procs.is_alive(pid)
    assert procs.read_pid(sandbox.state_dir, "moto") is None and procs.read_pid(sandbox.state_dir, "registry") is None
    assert not procs.port_open(sandbox.port) and not procs.port_open(sandbox.registry_port)
    if leftover is not None:
        assert "removed 1 leftover Batch job container" in out
        client = require_docker()
        assert client.containers.list(all=True, filters={"label": f"mfc.sandbox={sandbox.state_dir}"}) == []
    status = sandbox.cli("status", "--json", check=False)
    assert status.returncode == 1 and json.loads(status.stdout)["healthy"] is False
    assert profile.read_profile(str(sandbox.config), "sandbox") is not None
    assert "profile 'sandbox' removed" in sandbox.cli("down", "--forget").stdout
    assert sandbox.config.read_text() == USER_CONFIG


def _engine_ok() -> bool:
    from mfc.builder.engine import docker_available

    ok, _ = docker_available()
    if not ok:
        return False
    from mfc.builder.engine import docker_client

    try:
        docker_client().images.get(base_image_tag())
        return True
    except Exception:  # noqa: BLE001 - no image: skip the leftover-container part
        return False


def _start_long_job(sandbox) -> str:
    """A job whose container is still running when `down` kills moto."""
    batch = sandbox.client("batch")
    jd = batch.register_job_definition(
        jobDefinitionName="sleeper", type="container",
        containerProperties={"image": base_image_tag(), "command": ["sleep", "300"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]},
    )["jobDefinitionArn"]
    job_id = batch.submit_job(jobName="sleeper", jobQueue="mfc-cpu", jobDefinition=jd)["jobId"]
    assert procs.wait_until(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING", 30)
    client = require_docker()
    assert procs.wait_until(lambda: bool(client.containers.list(
        filters={"label": f"mfc.sandbox={sandbox.state_dir}"})), 30)
    return job_id


def test_a_background_process_that_exits_or_never_answers_is_a_clear_error_and_is_stopped(tmp_path):
    log = str(tmp_path / "p.log")
    exits = procs.spawn("p", ["sh", "-c", "echo broken config; exit 3"], 1, log, marker="broken")
    with pytest.raises(MfcError, match=r"(?s)the thing exited( with status 3)? \(log .*p\.log\):\n.*broken config"):
        procs.await_healthy(exits, lambda: False, 10, "the thing")
    silent = procs.spawn("p", ["sleep", "60"], 1, log, marker="sleep")
    t0 = time.monotonic()
    with pytest.raises(MfcError, match=r"the thing did not answer within 1 s"):
        procs.await_healthy(silent, lambda: False, 0.6, "the thing", interval=0.1)
    assert time.monotonic() - t0 < 10
    assert not procs.is_alive(silent.pid)
