"""What the Batch executor asks AWS Batch for, as plain data: per-step job settings, job
definitions (named by a hash of their content, so registering is idempotent), job names, tags,
container overrides, and the diagnosis of a job stuck in RUNNABLE.

Everything here is pure (no boto3, no network): the executor sends what these functions build.

Retries and timeouts: the orchestrator owns retries (each attempt is its own Batch job, with its
attempt number in the job name, the spec and the task record), so a job definition always says
``retryStrategy.attempts = 1``. A step's ``@timeout`` is sent as the job's
``attemptDurationSeconds`` (at least 60 s, Batch's minimum) so Batch stops the job server-side even
if mfc is gone; the orchestrator's own deadline still terminates the job first (``terminate_job``).
Both count from the job's start (RUNNING, ``startedAt``), never from its submission: time queued
is not run time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mfc.exceptions import MfcError

TASK_COMMAND = ("python", "-m", "mfc.runner.task", "--spec")
PLACEHOLDER_COMMAND = ["python", "-m", "mfc.runner.task", "--help"]  # every job overrides it
MIN_ATTEMPT_SECONDS = 60  # Batch refuses a shorter attemptDurationSeconds
MAX_NAME = 128
TAG_FLOW, TAG_RUN, TAG_STEP, TAG_TASK, TAG_ATTEMPT = "mfc:flow", "mfc:run", "mfc:step", "mfc:task", "mfc:attempt"
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")
# GPU instance families: g3, g4dn, g5, g5g, g6, g6e, gr6, p2, p3, p4d, p5... (not Graviton "c7g").
_GPU_FAMILY = re.compile(r"^(g|gr|p)\d")


@dataclass(frozen=True)
class JobSettings:
    """What one step's jobs ask Batch for (resources are Batch's units: vCPUs, MiB, GPUs)."""

    image: str
    queue: str
    cpu: int = 1
    memory: int = 4096
    gpu: int = 0
    shared_memory: int | None = None
    job_role: str | None = None
    timeout: int | None = None  # attemptDurationSeconds
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # @batch(aws_batch_tags=...)


@dataclass(frozen=True)
class Defaults:
    """The executor-wide choices: images, queues and resources from the command line and config."""

    image: str
    gpu_image: str | None = None
    queue: str | None = None  # --queue: wins over the configured queues
    cpu_queue: str | None = None  # config batch_queue
    gpu_queue: str | None = None  # config batch_gpu_queue
    cpu: float | None = None
    memory: float | None = None
    gpu: int = 0
    job_role: str | None = None  # config batch_job_role


def int_string(value: Any, minimum: int = 0) -> str:
    """A Batch resource value: an integer as a string, never "2.0" (Batch rejects it for GPU and
    EC2 vCPUs); fractions round up, e.g. ``int_string(0.5, 1) == "1"``."""
    return str(max(minimum, int(math.ceil(float(value)))))


def sanitize_name(text: str, fallback: str = "mfc") -> str:
    """Letters, digits, ``-`` and ``_`` only, starting and ending with a letter or digit, 3..128
    characters: what Batch accepts for job and job definition names."""
    name = _NAME_BAD.sub("-", text).strip("-_")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].rstrip("-_")
    if len(name) < 3:
        name = f"{fallback}-{name}".rstrip("-_") if name else fallback
        name = name if len(name) >= 3 else f"{name}-job"
    return name


def job_name(flow: str, step: str, task_id: str, attempt: int) -> str:
    """``<flow>-<step>-<task>-<attempt>``, sanitised; a long flow or step name is cut so the task
    and attempt always stay readable at the end."""
    suffix = f"-{sanitize_name(str(task_id), 't')}-{int(attempt)}"
    head = sanitize_name(f"{flow}-{step}")[: MAX_NAME - len(suffix)].rstrip("-_")
    return sanitize_name(head + suffix)


def job_tags(flow: str, run_id: str, step: str, task_id: str, attempt: int,
             extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """The tags that tie a job to its task (propagated to the ECS task with ``propagateTags``)."""
    tags = {k: str(v)[:256] for k, v in extra}
    tags.update({TAG_FLOW: flow, TAG_RUN: str(run_id), TAG_STEP: step, TAG_TASK: str(task_id),
                 TAG_ATTEMPT: str(attempt)})
    return tags


def resource_requirements(cpu: Any, memory: Any, gpu: Any = 0) -> list[dict[str, str]]:
    """Batch ``resourceRequirements``: VCPU (>= 1), MEMORY in MiB (>= 4), GPU only when asked for."""
    reqs = [{"type": "VCPU", "value": int_string(cpu, 1)}, {"type": "MEMORY", "value": int_string(memory, 4)}]
    if gpu and float(gpu) > 0:
        reqs.append({"type": "GPU", "value": int_string(gpu, 1)})
    return reqs


def step_settings(step: str, resources: dict[str, Any], batch_attrs: dict[str, Any] | None,
                  timeout: float | None, defaults: Defaults, image_override: str | None = None) -> JobSettings:
    """One step's settings. Resources: the most any source asks for (``@resources``/``@batch``, as
    merged into the step's policy, and ``--cpu/--memory/--gpu``). Image: ``@batch(image=)``, else
    the GPU image for a GPU step, else the image. Queue: ``@batch(queue=)`` > ``--queue`` > the
    configured GPU queue (GPU steps) > the configured queue. Role: ``@batch(iam_role=)`` > config."""
    attrs = batch_attrs or {}
    cpu = max(float(resources.get("cpu") or 0), float(defaults.cpu or 0), 1.0)
    memory = max(float(resources.get("memory") or 0), float(defaults.memory or 0)) or 4096.0
    gpu = max(int(math.ceil(float(resources.get("gpu") or 0))), int(defaults.gpu or 0))
    image = attrs.get("image") or image_override
    if not image:
        image = (defaults.gpu_image or defaults.image) if gpu else defaults.image
    queue = attrs.get("queue") or defaults.queue or (defaults.gpu_queue if gpu else None) or defaults.cpu_queue
    if not queue:
        raise MfcError(f"step {step}: no AWS Batch job queue to submit to",
                       hint="pass --queue QUEUE, set batch_queue in your profile (MFC_BATCH_QUEUE), "
                            "or run `mfc sandbox up` and export MFC_PROFILE=sandbox")
    shm = resources.get("shared_memory")
    extra = attrs.get("aws_batch_tags") or {}
    if not isinstance(extra, dict):
        raise MfcError(f"step {step}: @batch(aws_batch_tags=...) must be a dict of tag names to values")
    return JobSettings(
        image=image, queue=queue, cpu=int(int_string(cpu, 1)), memory=int(int_string(memory, 4)), gpu=gpu,
        shared_memory=int(int_string(shm, 1)) if shm else None,
        job_role=attrs.get("iam_role") or defaults.job_role,
        timeout=max(MIN_ATTEMPT_SECONDS, int(math.ceil(timeout))) if timeout else None,
        tags=tuple(sorted((str(k), str(v)) for k, v in extra.items())),
    )


def job_definition(flow: str, settings: JobSettings) -> dict[str, Any]:
    """``register_job_definition`` arguments for a step's settings. The name is
    ``mfc-<flow>-<hash12>`` of everything else, so equal settings give the same name and a
    definition already registered (ACTIVE) can be reused instead of adding a revision."""
    container: dict[str, Any] = {
        "image": settings.image,
        "command": list(PLACEHOLDER_COMMAND),
        "resourceRequirements": resource_requirements(settings.cpu, settings.memory, settings.gpu),
    }
    if settings.job_role:
        container["jobRoleArn"] = settings.job_role
    if settings.shared_memory:
        container["linuxParameters"] = {"sharedMemorySize": settings.shared_memory}
    body: dict[str, Any] = {
        "type": "container",
        "containerProperties": container,
        "retryStrategy": {"attempts": 1},  # the orchestrator retries (see the module docstring)
        "propagateTags": True,
        "platformCapabilities": ["EC2"],
        "tags": {TAG_FLOW: flow},
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    prefix = sanitize_name(f"mfc-{flow}")[: MAX_NAME - 13].rstrip("-_")
    return {"jobDefinitionName": f"{prefix}-{digest}", **body}


def task_command(spec_arg: str) -> list[str]:
    """The container command of a task: ``python -m mfc.runner.task --spec <JSON or @url>``."""
    return [*TASK_COMMAND, spec_arg]


def container_overrides(command: list[str], environment: dict[str, str], settings: JobSettings) -> dict[str, Any]:
    """``containerOverrides`` of a task's job: its command, environment (sorted; Batch drops empty
    values, so they are left out) and resourceRequirements."""
    return {
        "command": list(command),
        "environment": [{"name": k, "value": str(v)} for k, v in sorted(environment.items()) if str(v) != ""],
        "resourceRequirements": resource_requirements(settings.cpu, settings.memory, settings.gpu),
    }


def overrides_size(overrides: dict[str, Any]) -> int:
    """Bytes the overrides take in a request (Batch refuses more than 30 KiB of them)."""
    return len(json.dumps(overrides, separators=(",", ":")).encode())


def settings_summary(settings: JobSettings) -> dict[str, Any]:
    """The settings as JSON-able data (handles, diagnostics)."""
    return asdict(settings)


# -- compute environments ---------------------------------------------------------------------------
def compute_environment_has_gpu(ce: dict[str, Any]) -> bool | None:
    """Whether a compute environment (``describe_compute_environments`` entry) can give GPUs: True
    for GPU instance types (g*, p* families) or an NVIDIA AMI type, False for CPU-only types,
    "optimal" or Fargate, None when it cannot be told (unmanaged)."""
    resources = ce.get("computeResources") or {}
    if not resources:
        return None if ce.get("type") == "UNMANAGED" else False
    if str(resources.get("type", "")).startswith("FARGATE"):
        return False
    for config in resources.get("ec2Configuration") or []:
        if "NVIDIA" in str(config.get("imageType", "")).upper() or "GPU" in str(config.get("imageType", "")).upper():
            return True
    return any(_GPU_FAMILY.match(str(t).lower()) for t in resources.get("instanceTypes") or [])


def gpu_problem(queue: str, ces: list[dict[str, Any]], gpus: int) -> str | None:
    """Why ``queue`` (whose compute environments are ``ces``) cannot run a job asking for ``gpus``
    GPUs, or None when one of them can (or might)."""
    verdicts = [compute_environment_has_gpu(ce) for ce in ces]
    if any(v is not False for v in verdicts):
        return None
    types = sorted({str(t) for ce in ces for t in (ce.get("computeResources") or {}).get("instanceTypes") or []})
    kinds = ", ".join(types) or "Fargate or none"
    return (f"job queue {queue} has no compute environment with GPU instances (instance types: {kinds}), "
            f"but the job asks for {gpus} GPU(s)")


def diagnose_runnable(settings: JobSettings, queue_desc: dict[str, Any] | None, ces: list[dict[str, Any]]) -> list[str]:
    """Reasons a job with ``settings`` may sit in RUNNABLE forever on its queue, read from the
    queue's and its compute environments' descriptions (empty when none is visible)."""
    reasons: list[str] = []
    if queue_desc is None:
        return [f"job queue {settings.queue} no longer exists"]
    if queue_desc.get("state") != "ENABLED" or queue_desc.get("status") == "INVALID":
        reasons.append(f"job queue {settings.queue} is {queue_desc.get('state')}/{queue_desc.get('status')}"
                       + (f": {queue_desc['statusReason']}" if queue_desc.get("statusReason") else ""))
    if not ces:
        reasons.append(f"job queue {settings.queue} has no compute environment")
    usable = []
    for ce in ces:
        name = ce.get("computeEnvironmentName", "?")
        resources = ce.get("computeResources") or {}
        if ce.get("state") != "ENABLED":
            reasons.append(f"compute environment {name} is {ce.get('state')}")
        elif ce.get("status") == "INVALID":
            reasons.append(f"compute environment {name} is INVALID"
                           + (f": {ce['statusReason']}" if ce.get("statusReason") else ""))
        elif resources and int(resources.get("maxvCpus") or 0) < settings.cpu:
            reasons.append(f"compute environment {name} allows at most {resources.get('maxvCpus', 0)} vCPUs, "
                           f"the job asks for {settings.cpu}")
        elif settings.gpu and compute_environment_has_gpu(ce) is False:
            reasons.append(f"compute environment {name} has no GPU instances, the job asks for {settings.gpu} GPU(s)")
        else:
            usable.append(name)
    if usable and not reasons:
        reasons.append(f"compute environment(s) {', '.join(usable)} look usable: no instance type may have "
                       f"{settings.cpu} vCPUs and {settings.memory} MiB free (memory requests must leave room "
                       "for the ECS agent), or the account's EC2 limits stop it from scaling")
    return reasons


def runnable_message(job_id: str, step: str, seconds: float, settings: JobSettings, reasons: list[str]) -> str:
    """The error of a job that stayed RUNNABLE too long (it is terminated)."""
    asks = f"{settings.cpu} vCPU, {settings.memory} MiB" + (f", {settings.gpu} GPU" if settings.gpu else "")
    why = "; ".join(reasons) or "no compute environment of the queue can place it"
    return (f"Batch job {job_id} of step {step} stayed RUNNABLE for {seconds:.0f}s on queue {settings.queue} "
            f"(asks for {asks}) and was terminated: {why}. Fix the queue's compute environments or the "
            "step's resources; MFC_BATCH_RUNNABLE_TIMEOUT sets how long to wait")
