"""What the Batch executor asks Batch for, built as plain data (no AWS, no Docker): resource
requirements, per-step settings, job definitions, job names, tags, overrides, GPU detection and
the RUNNABLE diagnosis."""

from __future__ import annotations

import json
import re

import pytest

from mfc.decorators import BatchDecorator
from mfc.exceptions import MfcError
from mfc.runner import batch_jobs as jobs
from mfc.runner.batch_setup import split_reference

VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,126}[A-Za-z0-9]$")
DEFAULTS = jobs.Defaults(image="reg:5000/cpu:1", gpu_image="reg:5000/gpu:1", cpu_queue="cpu-q", gpu_queue="gpu-q",
                         job_role="arn:aws:iam::123456789012:role/job")


def test_resource_values_are_integer_strings():
    assert jobs.resource_requirements(2.0, 4096.0, 1.0) == [
        {"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "4096"}, {"type": "GPU", "value": "1"}]
    assert jobs.resource_requirements(0.5, "1000.5") == [
        {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "1001"}]  # no GPU entry without GPUs
    for value in (jobs.int_string(3.0), jobs.int_string("8"), jobs.int_string(0, 1)):
        assert re.fullmatch(r"[1-9]\d*", value)


def test_cpu_step_takes_the_cpu_image_and_queue_and_resources_are_the_largest_asked():
    settings = jobs.step_settings("train", {"cpu": 4, "memory": 16000}, None, None,
                                  jobs.Defaults(**{**DEFAULTS.__dict__, "cpu": 2, "memory": 32000}))
    assert (settings.image, settings.queue, settings.cpu, settings.memory, settings.gpu) == (
        "reg:5000/cpu:1", "cpu-q", 4, 32000, 0)
    assert settings.job_role.endswith(":role/job") and settings.timeout is None


def test_gpu_from_the_command_line_picks_the_gpu_image_and_queue():
    settings = jobs.step_settings("train", {}, None, None, jobs.Defaults(**{**DEFAULTS.__dict__, "gpu": 1}))
    assert (settings.image, settings.queue, settings.gpu) == ("reg:5000/gpu:1", "gpu-q", 1)
    body = jobs.job_definition("Flow", settings)
    assert {"type": "GPU", "value": "1"} in body["containerProperties"]["resourceRequirements"]
    assert body["containerProperties"]["image"] == "reg:5000/gpu:1"


def test_gpu_from_a_decorator_and_batch_arguments_win():
    attrs = BatchDecorator({"gpu": 2, "queue": "mine", "image": "own:2", "iam_role": "arn:role/x",
                            "aws_batch_tags": {"team": "ml"}}).attributes
    settings = jobs.step_settings("train", {"gpu": 2, "cpu": 1, "memory": 4096, "shared_memory": 512.0}, attrs,
                                  90.5, jobs.Defaults(**{**DEFAULTS.__dict__, "queue": "cli-q"}))
    assert (settings.image, settings.queue, settings.gpu, settings.job_role) == ("own:2", "mine", 2, "arn:role/x")
    assert settings.shared_memory == 512 and settings.timeout == 91
    assert dict(settings.tags) == {"team": "ml"}
    # --queue wins over the configured queues, @batch(queue=) over --queue
    cli = jobs.step_settings("s", {"gpu": 1}, None, None, jobs.Defaults(**{**DEFAULTS.__dict__, "queue": "cli-q"}))
    assert cli.queue == "cli-q" and cli.image == "reg:5000/gpu:1"


def test_timeouts_below_batch_minimum_become_60_seconds_and_no_queue_is_an_error():
    assert jobs.step_settings("s", {}, None, 5, DEFAULTS).timeout == 60
    with pytest.raises(MfcError, match="step s: no AWS Batch job queue"):
        jobs.step_settings("s", {}, None, None, jobs.Defaults(image="i"))
    with pytest.raises(MfcError, match="aws_batch_tags"):
        jobs.step_settings("s", {}, {"aws_batch_tags": ["x"]}, None, DEFAULTS)


def test_job_definition_is_named_by_its_content():
    settings = jobs.step_settings("s", {"shared_memory": 256}, None, 120, DEFAULTS)
    body = jobs.job_definition("My.Flow", settings)
    again = jobs.job_definition("My.Flow", jobs.step_settings("other", {"shared_memory": 256}, None, 120, DEFAULTS))
    assert body == again  # same settings, same definition: registration can reuse it
    assert re.fullmatch(r"mfc-My-Flow-[0-9a-f]{12}", body["jobDefinitionName"])
    assert body["retryStrategy"] == {"attempts": 1}  # the orchestrator retries
    assert body["containerProperties"]["jobRoleArn"] == DEFAULTS.job_role
    assert body["containerProperties"]["linuxParameters"] == {"sharedMemorySize": 256}
    assert "timeout" not in body  # sent per job, so one definition serves steps with other timeouts
    other = jobs.job_definition("My.Flow", jobs.step_settings("s", {"cpu": 2}, None, None, DEFAULTS))
    assert other["jobDefinitionName"] != body["jobDefinitionName"]
    long = jobs.job_definition("F" * 200, settings)["jobDefinitionName"]
    assert len(long) <= 128 and VALID_NAME.match(long)


@pytest.mark.parametrize("flow,step,task,attempt", [
    ("HelloFlow", "start", "1", 0),
    ("Flow", "_private_step_", "12", 3),
    ("Ünïcode.Flow", "end", "7", 1),
    ("F" * 150, "s" * 150, "123456", 2),
    ("", "", "1", 0),
])
def test_job_names_are_valid_for_batch(flow, step, task, attempt):
    name = jobs.job_name(flow, step, task, attempt)
    assert VALID_NAME.match(name), name
    assert name.endswith(f"-{task}-{attempt}")


def test_tags_and_overrides():
    tags = jobs.job_tags("F", "1700", "start", "3", 1, (("team", "ml"),))
    assert tags == {"team": "ml", "mfc:flow": "F", "mfc:run": "1700", "mfc:step": "start", "mfc:task": "3",
                    "mfc:attempt": "1"}
    settings = jobs.step_settings("s", {"cpu": 2}, None, None, DEFAULTS)
    spec_json = json.dumps({"a": 1})
    overrides = jobs.container_overrides(jobs.task_command(spec_json), {"B": "2", "A": "1", "EMPTY": ""}, settings)
    assert overrides["command"] == ["python", "-m", "mfc.runner.task", "--spec", spec_json]
    assert overrides["environment"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert overrides["resourceRequirements"] == [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "4096"}]
    assert jobs.overrides_size(overrides) == len(json.dumps(overrides, separators=(",", ":")))


def _ce(name, types=None, state="ENABLED", status="VALID", max_vcpus=256, kind="EC2", image_type=None):
    resources = {"type": kind, "maxvCpus": max_vcpus, "instanceTypes": types or []}
    if image_type:
        resources["ec2Configuration"] = [{"imageType": image_type}]
    return {"computeEnvironmentName": name, "state": state, "status": status, "type": "MANAGED",
            "computeResources": resources}


def test_gpu_compute_environments_are_recognised():
    assert jobs.compute_environment_has_gpu(_ce("g", ["g4dn.xlarge", "g5.xlarge"])) is True
    assert jobs.compute_environment_has_gpu(_ce("p", ["p3"])) is True
    assert jobs.compute_environment_has_gpu(_ce("ami", ["optimal"], image_type="ECS_AL2_NVIDIA")) is True
    assert jobs.compute_environment_has_gpu(_ce("c", ["optimal", "c7g.large", "m5"])) is False
    assert jobs.compute_environment_has_gpu(_ce("f", kind="FARGATE")) is False
    assert jobs.compute_environment_has_gpu({"type": "UNMANAGED"}) is None
    assert jobs.gpu_problem("q", [_ce("c", ["optimal"])], 1).startswith("job queue q has no compute environment with GPU")
    assert jobs.gpu_problem("q", [_ce("c", ["optimal"]), _ce("g", ["g5.xlarge"])], 1) is None


def test_runnable_diagnosis_names_the_likely_cause():
    settings = jobs.JobSettings(image="i", queue="q", cpu=4, memory=8192, gpu=1)
    queue = {"state": "ENABLED", "status": "VALID"}
    reasons = jobs.diagnose_runnable(settings, queue, [
        _ce("off", ["g5.xlarge"], state="DISABLED"), _ce("broken", ["g5.xlarge"], status="INVALID"),
        _ce("zero", ["g5.xlarge"], max_vcpus=0), _ce("cpu", ["optimal"])])
    text = "; ".join(reasons)
    assert "off is DISABLED" in text and "broken is INVALID" in text
    assert "zero allows at most 0 vCPUs" in text and "cpu has no GPU instances" in text
    assert jobs.diagnose_runnable(settings, None, []) == ["job queue q no longer exists"]
    fine = jobs.diagnose_runnable(settings, queue, [_ce("g", ["g5.xlarge"])])
    assert len(fine) == 1 and "look usable" in fine[0]
    message = jobs.runnable_message("j-1", "train", 601, settings, reasons)
    assert "stayed RUNNABLE for 601s on queue q" in message and "MFC_BATCH_RUNNABLE_TIMEOUT" in message


@pytest.mark.parametrize("image,expected", [
    ("127.0.0.1:5056/mfc-base:0.1.0", ("127.0.0.1:5056", "mfc-base", "0.1.0")),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/flow:abc", (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com", "team/flow", "abc")),
    ("localhost/x", ("localhost", "x", "latest")),
    ("python:3.11", (None, "python", "3.11")),
    ("library/python", (None, "library/python", "latest")),
    ("reg.io/a/b@sha256:abc", ("reg.io", "a/b", "sha256:abc")),
])
def test_image_references_are_split(image, expected):
    assert split_reference(image) == expected
