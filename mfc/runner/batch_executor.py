"""The AWS Batch executor: each task attempt one Batch job running the task entrypoint.

A job runs ``python -m mfc.runner.task --spec JSON`` in the step's image; the entrypoint fetches
the run's code package from the (S3) datastore, so only the image must be in a registry. A spec
too large for Batch's 30 KiB of overrides is written next to the task's records
(``<attempt>.spec.json``) and passed as ``--spec @s3://...``.

Per task: :meth:`submit` returns at once; a small pool registers the job definition (once per
distinct settings, see :mod:`mfc.runner.batch_jobs`) and calls ``submit_job``. One poller thread
watches every job with ``describe_jobs`` (100 ids a call), polling every 0.5 s after a change and
backing off to ``poll_max`` while nothing changes; it follows each job's CloudWatch stream into
the task's stdout log (Batch merges stdout and stderr; see :mod:`mfc.runner.batch_logs`) and,
when a job ends, appends the rest of its log and reports a :class:`TaskExit`. A job that stays
RUNNABLE longer than ``runnable_timeout`` (setting ``batch_runnable_timeout``, 600 s) is terminated
with the reasons its queue may be unable to place it.

The orchestrator owns retries and timeouts (see :mod:`mfc.runner.batch_jobs`): ``kill`` is
``terminate_job``; ``close`` terminates every job still running (Ctrl-C). A job's start is when
the poller first sees it RUNNING (or ended after running), at its ``startedAt``: ``@timeout``
counts from there, so time spent SUBMITTED, PENDING, RUNNABLE or STARTING (instances scaling
up, the image being pulled) never times a task out; the RUNNABLE detector guards stuck queues.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mfc.exceptions import MfcError
from mfc.runner import batch_jobs as jobs
from mfc.runner.batch_logs import LogFollower
from mfc.runner.batch_setup import (
    access_error,
    check_image,
    check_queues,
    describe_queue,
    explain,
)
from mfc.runner.docker_executor import passthrough_environment, signal_code
from mfc.runner.executor import Executor, Handle, TaskExit, TaskStarted
from mfc.runner.settings import BatchSettings
from mfc.runner.taskspec import TaskSpec, spec_argument

SPEC_INLINE_LIMIT = 20_000  # bytes of spec JSON passed inline; larger specs go through the datastore
OVERRIDES_LIMIT = 30 * 1024
DESCRIBE_BATCH = 100
LOST_AFTER = 300.0  # seconds of failing describe_jobs calls before the jobs are given up
MISSING_POLLS = 5  # describe_jobs answers without a submitted job before it counts as gone
ENDED = ("SUCCEEDED", "FAILED")
STARTED = ("RUNNING", *ENDED)
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE")


@dataclass
class _Job:
    handle: Handle
    settings: jobs.JobSettings
    job_id: str | None = None
    status: str = "SUBMITTING"
    killed: bool = False
    done: bool = False
    runnable_since: float | None = None
    started: bool = False
    follower: LogFollower | None = None
    logs_polled: float = 0.0
    missing: int = 0
    ending: tuple[float, int, str | None] | None = None  # (report at, code, error) while logs settle


class BatchExecutor(Executor):
    """Runs each task as an AWS Batch job (see the module docstring).

    ``settings``: images (``@batch(image=)`` wins), queues (``@batch(queue=)`` wins; else
    ``batch_gpu_queue`` for GPU steps / ``batch_queue``, both ``--queue`` when given), resource
    floors for every step, RUNNABLE timeout and polling (see :class:`BatchSettings`, built from the
    config); ``policies``: the run's step policies (their ``@batch`` arguments and ``@timeout``).
    ``clients`` replaces the boto3 clients by service name.
    """

    name = "batch"
    reports_start = True

    def __init__(self, config: Any, settings: BatchSettings, policies: dict[str, Any] | None = None,
                 clients: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.settings = settings
        self.defaults = settings.defaults
        self.policies = dict(policies or {})
        self.runnable_timeout = settings.runnable_timeout
        self.sandbox = settings.sandbox
        self.poll_min, self.poll_max, self.log_interval = settings.poll_min, settings.poll_max, settings.log_interval
        self.log_settle = 0.0 if self.sandbox else 2.0  # CloudWatch may show the last lines a moment late
        self._clients = dict(clients or {})
        self._pool = ThreadPoolExecutor(max_workers=settings.submit_workers, thread_name_prefix="mfc-batch-submit")
        self._jobs: dict[str, _Job] = {}
        self._definitions: dict[str, str] = {}  # job definition name -> ARN
        self._register_lock = threading.Lock()
        self.checked: set[Any] = set()  # (queue, gpus) and images already checked
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._poller: threading.Thread | None = None
        self._closed = False
        self.submitted: list[str] = []  # job ids, in submission order (tests, diagnostics)

    # -- clients and settings ---------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (made once, shared by the threads)."""
        with self._lock:
            if service not in self._clients:
                from mfc.aws import client

                self._clients[service] = client(service, self.config)
            return self._clients[service]

    def settings_for(self, step: str, resources: dict[str, Any], image: str | None = None) -> jobs.JobSettings:
        """The job settings of ``step`` given its resources (see :func:`batch_jobs.step_settings`)."""
        policy = self.policies.get(step)
        decorators = getattr(policy, "decorators", {}) or {}
        attrs = decorators["batch"].attributes if "batch" in decorators else None
        return jobs.step_settings(step, resources or {}, attrs, getattr(policy, "timeout", None), self.defaults, image)

    # -- before the run ---------------------------------------------------------------------------
    def check_queues(self, steps: list[str]) -> None:
        """Check that AWS answers and every step's queue exists, is enabled and, for GPU steps, has
        GPU instances (see :func:`batch_setup.check_queues`)."""
        check_queues(self.config, self.defaults, self.policies, steps, self.checked)

    def preflight(self, flow_name: str, steps: list[str]) -> None:
        """Check before a run is recorded that every step can be submitted: the queues (see
        :meth:`check_queues`), each image is in its registry; registers the job definitions.
        Raises MfcError with what to fix."""
        self.check_queues(steps)
        for step in steps:
            settings = self._step_settings(step)
            if settings.image not in self.checked:
                check_image(settings.image, self.config, step)
                self.checked.add(settings.image)
            try:
                self._definition(flow_name, settings)
            except Exception as exc:  # noqa: BLE001 - mapped to one clear line
                raise access_error(exc, self.config, "AWS Batch (register_job_definition)") from None

    def _step_settings(self, step: str) -> jobs.JobSettings:
        return self.settings_for(step, getattr(self.policies.get(step), "resources", {}) or {})

    def _definition(self, flow: str, settings: jobs.JobSettings) -> str:
        """The ARN of an ACTIVE job definition for ``settings``, registered only when missing."""
        body = jobs.job_definition(flow, settings)
        name = body["jobDefinitionName"]
        with self._register_lock:  # one registration per definition, even from several submit threads
            if name not in self._definitions:
                batch = self.client("batch")
                found = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE").get("jobDefinitions")
                if found:
                    arn = max(found, key=lambda d: int(d.get("revision", 0)))["jobDefinitionArn"]
                else:
                    arn = batch.register_job_definition(**body)["jobDefinitionArn"]
                self._definitions[name] = arn
            return self._definitions[name]

    def start(self) -> None:
        """Start the poller thread (idempotent)."""
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, name="mfc-batch-poller", daemon=True)
            self._poller.start()

    # -- submit -----------------------------------------------------------------------------------
    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        """Queue the task's job for submission and return its handle at once; a job that cannot
        be submitted ends as a TaskExit with the reason."""
        self.start()
        if spec.code_package is None:
            raise MfcError(f"task {spec.pathspec}: the Batch executor needs the run's code package")
        if not spec.datastore_root.startswith("s3://"):
            raise MfcError(f"task {spec.pathspec}: a Batch job cannot reach the datastore {spec.datastore_root}",
                           hint="use an S3 datastore: --datastore-root s3://BUCKET/PREFIX")
        key = f"{spec.step}/{spec.task_id}/{spec.attempt}"
        handle = Handle(key, spec, stdout, stderr)
        job = _Job(handle, self.settings_for(spec.step, spec.resources, spec.image))
        with self._lock:
            self._jobs[key] = job
        self._pool.submit(self._submit_job, job)
        return handle

    def environment(self, spec: TaskSpec) -> dict[str, str]:
        """A task's variables: the host's ``MFC_*`` settings meant for tasks, the AWS region and
        endpoints, the step's ``@environment``, the datastore root. Credentials are never sent
        (the job role provides them), except the sandbox's dummy ones."""
        from mfc.aws import SANDBOX_KEY, env_for_tasks

        env = passthrough_environment()
        env.update({k: v for k, v in env_for_tasks(self.config).items() if k not in CREDENTIAL_VARS})
        if self.sandbox:
            env.update(AWS_ACCESS_KEY_ID=SANDBOX_KEY, AWS_SECRET_ACCESS_KEY=SANDBOX_KEY)
        env.update(spec.environment)
        env.update(PYTHONUNBUFFERED="1", MFC_DATASTORE_ROOT=spec.datastore_root)
        return env

    def spec_argument(self, spec: TaskSpec) -> str:
        """The ``--spec`` value: the JSON itself, or ``@<datastore url>`` of a copy when large."""
        return spec_argument(spec, SPEC_INLINE_LIMIT)

    def submit_arguments(self, spec: TaskSpec, settings: jobs.JobSettings, definition: str) -> dict[str, Any]:
        """The ``submit_job`` keyword arguments of a task."""
        overrides = jobs.container_overrides(jobs.task_command(self.spec_argument(spec)), self.environment(spec),
                                             settings)
        size = jobs.overrides_size(overrides)
        if size > OVERRIDES_LIMIT:
            raise MfcError(f"task {spec.pathspec}: its Batch container overrides take {size} bytes, more than "
                           f"Batch's {OVERRIDES_LIMIT}", hint="shrink the step's @environment variables")
        kwargs: dict[str, Any] = {
            "jobName": jobs.job_name(spec.flow_name, spec.step, spec.task_id, spec.attempt),
            "jobQueue": settings.queue, "jobDefinition": definition, "containerOverrides": overrides,
            "tags": jobs.job_tags(spec.flow_name, spec.run_id, spec.step, spec.task_id, spec.attempt, settings.tags),
            "propagateTags": True,
        }
        if settings.timeout:
            kwargs["timeout"] = {"attemptDurationSeconds": settings.timeout}
        return kwargs

    def _submit_job(self, job: _Job) -> None:
        spec = job.handle.spec
        try:
            definition = self._definition(spec.flow_name, job.settings)
            kwargs = self.submit_arguments(spec, job.settings, definition)
            if job.killed or self._closed:
                self._end(job, -signal.SIGKILL, None)
                return
            job_id = self.client("batch").submit_job(**kwargs)["jobId"]
        except Exception as exc:  # noqa: BLE001 - reported as the task's end
            self._end(job, 1, f"could not submit the Batch job of {spec.pathspec}: {explain(exc)}")
            return
        job.job_id = job_id
        job.status = "SUBMITTED"
        job.handle.extra.update(job_id=job_id, job_name=kwargs["jobName"], queue=job.settings.queue,
                                job_definition=definition, image=job.settings.image,
                                resource_requirements=kwargs["containerOverrides"]["resourceRequirements"])
        with self._lock:
            self.submitted.append(job_id)
        if job.killed or self._closed:
            self._terminate(job, "mfc: the task was stopped")
        self._wake.set()

    # -- watching jobs ------------------------------------------------------------------------------
    def describe_jobs(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``describe_jobs`` for any number of ids (100 a call): job id -> description."""
        found: dict[str, dict[str, Any]] = {}
        batch = self.client("batch")
        for i in range(0, len(job_ids), DESCRIBE_BATCH):
            chunk = job_ids[i:i + DESCRIBE_BATCH]
            if chunk:  # an empty list would describe every job of the account (moto)
                for desc in batch.describe_jobs(jobs=chunk).get("jobs") or []:
                    found[desc["jobId"]] = desc
        return found

    def _poll_loop(self) -> None:
        delay = self.poll_min
        failing_since: float | None = None
        while not self._closed:
            with self._lock:
                active = [j for j in self._jobs.values() if j.job_id and not j.done]
            changed = False
            if active:
                try:
                    described = self.describe_jobs([j.job_id for j in active if j.job_id and j.ending is None])
                    failing_since = None
                except Exception as exc:  # noqa: BLE001 - transient errors are retried below
                    described = None
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > LOST_AFTER:
                        for job in active:
                            self._terminate(job, "mfc: lost contact with AWS Batch")
                            self._end(job, 1, f"lost contact with AWS Batch for {LOST_AFTER:.0f}s: {explain(exc)}")
                        failing_since = None
                for job in active:
                    if self._closed:
                        break
                    try:
                        desc = None if described is None or job.job_id is None else described.get(job.job_id)
                        changed |= self._update(job, desc, described is not None)
                    except Exception as exc:  # noqa: BLE001 - one job's trouble must not stop the others
                        self._end(job, 1, f"lost track of Batch job {job.job_id}: {explain(exc)}")
            delay = self.poll_min if changed else min(self.poll_max, delay * 1.5)
            if self._wake.wait(timeout=delay if active else 1.0):
                self._wake.clear()
                delay = self.poll_min

    def _update(self, job: _Job, desc: dict[str, Any] | None, answered: bool = True) -> bool:
        """Take one description of a job into account; True when its state changed."""
        now = time.monotonic()
        if job.ending is not None:
            if now >= job.ending[0]:
                self._finish(job)
                return True
            return False
        if desc is None:
            if answered:
                job.missing += 1
                if job.missing >= MISSING_POLLS:
                    self._end(job, 1, f"Batch job {job.job_id} is no longer known to AWS Batch")
                    return True
            return False
        job.missing = 0
        status = desc.get("status", "")
        changed = status != job.status
        job.status = status
        job.handle.extra["status"] = status
        container = desc.get("container") or {}
        if job.follower is None and container.get("logStreamName"):
            job.follower = LogFollower(self.client("logs"), container["logStreamName"], job.handle.stdout)
        if status == "RUNNABLE":
            job.runnable_since = job.runnable_since or now
            if not job.killed and now - job.runnable_since > self.runnable_timeout:
                self._stuck(job, now - job.runnable_since)
                return True
        else:
            job.runnable_since = None
        if status in STARTED and not job.started:
            self._started(job, desc)
        if status == "RUNNING" and job.follower is not None and now - job.logs_polled >= self.log_interval:
            job.logs_polled = now
            self._follow(job)
        if status in ENDED:
            code, error = self._outcome(job, desc)
            job.ending = (now + self.log_settle, code, error)
            if self.log_settle <= 0:
                self._finish(job)
            return True
        return changed

    def _started(self, job: _Job, desc: dict[str, Any]) -> None:
        """Report the job's start, at Batch's ``startedAt``; a job that failed without one never ran."""
        started_ms = desc.get("startedAt")
        if started_ms is None and desc.get("status") != "RUNNING":
            return
        job.started = True
        at = float(started_ms) / 1000 if started_ms else time.time()
        job.handle.extra["started_at"] = at
        self.events.put(TaskStarted(job.handle.key, at))

    def _outcome(self, job: _Job, desc: dict[str, Any]) -> tuple[int, str | None]:
        container = desc.get("container") or {}
        exit_code = container.get("exitCode")
        if desc["status"] == "SUCCEEDED":
            return int(exit_code or 0), None
        if job.killed:
            return (signal_code(int(exit_code)) if exit_code is not None else -signal.SIGKILL), None
        reason = container.get("reason") or desc.get("statusReason") or ""
        if exit_code is not None:
            if "OutOfMemory" in reason:
                return 137, (f"killed: out of memory (limit {job.settings.memory} MiB); raise "
                             "@resources(memory=...) or @batch(memory=...)")
            return signal_code(int(exit_code)), (f"Batch job {job.job_id}: {reason}" if reason else None)
        return 1, f"Batch job {job.job_id} failed before the task ran: {reason or 'no reason given'}"

    def _follow(self, job: _Job) -> None:
        try:
            job.follower.poll()  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - logs are best effort while running; retried later
            job.handle.extra["log_error"] = explain(exc)

    def _finish(self, job: _Job) -> None:
        assert job.ending is not None
        _, code, error = job.ending
        if job.follower is not None:
            try:
                job.follower.poll()
            except Exception as exc:  # noqa: BLE001
                _append(job.handle.stdout, f"mfc: could not read the job's log stream {job.follower.stream} "
                                           f"from CloudWatch Logs: {explain(exc)}\n")
        self._end(job, code, error)

    def _stuck(self, job: _Job, seconds: float) -> None:
        try:
            queue, ces = describe_queue(self.client("batch"), job.settings.queue)
            reasons = jobs.diagnose_runnable(job.settings, queue, ces)
        except Exception as exc:  # noqa: BLE001 - the message says what could not be looked at
            reasons = [f"(could not describe the queue: {explain(exc)})"]
        message = jobs.runnable_message(job.job_id or "?", job.handle.spec.step, seconds, job.settings, reasons)
        self._terminate(job, f"mfc: stayed RUNNABLE for {seconds:.0f}s")
        self._end(job, 1, message)

    def _end(self, job: _Job, code: int, error: str | None) -> None:
        with self._lock:
            if job.done:
                return
            job.done = True
            if self._jobs.get(job.handle.key) is job:
                del self._jobs[job.handle.key]
        job.handle.extra["exit_code"] = code
        self.events.put(TaskExit(job.handle.key, code, error))

    # -- stopping -------------------------------------------------------------------------------------
    def _terminate(self, job: _Job, reason: str) -> None:
        if job.job_id is None:
            return
        try:
            self.client("batch").terminate_job(jobId=job.job_id, reason=reason[:250])
        except Exception:  # noqa: BLE001 - ended already, or AWS is unreachable (close() retries nothing)
            pass

    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        """Terminate the task's job (Batch sends SIGTERM, then SIGKILL after its own grace); its
        end still arrives as a TaskExit once Batch reports it. Never blocks."""
        with self._lock:
            job = self._jobs.get(handle.key)
        if job is None or job.killed:
            return
        job.killed = True
        if job.job_id is not None:
            self._pool.submit(self._terminate, job, "mfc: the task was stopped")
        self._wake.set()

    def close(self) -> None:
        """Terminate every job this executor submitted that has not ended (Ctrl-C path), drop
        submissions not made yet, and stop the poller."""
        self._closed = True
        self._wake.set()
        with self._lock:
            left = [j for j in self._jobs.values() if not j.done]
        for job in left:
            job.killed = True
            self._terminate(job, "mfc: the run was stopped")
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._poller is not None:
            self._poller.join(timeout=10)

    def pending(self) -> list[str]:
        """Ids of the jobs submitted that have not ended (tests, diagnostics)."""
        with self._lock:
            return [j.job_id for j in self._jobs.values() if j.job_id and not j.done]


def _append(path: str, text: str) -> None:
    try:
        with open(path, "ab") as fh:
            fh.write(text.encode())
    except OSError:
        pass
