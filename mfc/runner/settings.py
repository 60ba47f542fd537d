"""Typed settings of a run and of its executors, each built from a resolved :class:`Config` in one
place (so a flag, ``MFC_*`` variable, profile entry or default reaches them by one path; see
``mfc config show``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mfc.config import Config
from mfc.runner import batch_jobs as jobs

# Settings that only mean something for steps on Batch or in Docker: given on the command line
# without such a step, they are an error (from the environment or a profile they wait for one).
BATCH_ONLY = ("batch_queue", "cpu", "memory", "gpu_image")


@dataclass(frozen=True)
class RunSettings:
    """What ``mfc run``/``mfc resume`` resolves through Config: how many tasks at once, the largest
    foreach, where steps run (``local_docker``/``batch``: None, ``*`` or ``a,b``) and the container
    and Batch choices. ``given``: the settings given on the command line."""

    max_workers: int
    max_num_splits: int
    quiet: bool = False
    local_docker: str | None = None
    batch: str | None = None
    image: str | None = None
    gpu_image: str | None = None
    gpu: int = 0
    given: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, config: Config) -> RunSettings:
        keys = ("max_workers", "max_num_splits", "quiet", "local_docker", "batch", "image", "gpu_image", "gpu")
        given = frozenset(k for k in (*keys, *BATCH_ONLY) if config.given(k))
        return cls(**{k: config[k] for k in keys}, given=given)


@dataclass(frozen=True)
class BatchSettings:
    """What a :class:`~mfc.runner.batch_executor.BatchExecutor` is made with: the executor-wide
    job choices (images, queues, resources, role), how long a job may stay RUNNABLE, and polling:
    ``poll_min`` after a change, backing off to ``poll_max``; ``log_interval`` between CloudWatch
    reads of a running job; ``sandbox``: AWS is a local sandbox (fast polls, no log settling)."""

    defaults: jobs.Defaults
    runnable_timeout: float = 600.0
    sandbox: bool = False
    poll_min: float = 0.5
    poll_max: float = 8.0
    log_interval: float = 5.0
    submit_workers: int = 8

    @classmethod
    def from_config(cls, config: Config, image: str = "", gpu_image: str | None = None,
                    **tuning: float) -> BatchSettings:
        """The settings for ``image``/``gpu_image`` (set once built and pushed; "" while only the
        queues are checked); ``tuning`` overrides the polling fields (tests)."""
        from mfc.aws import is_local_endpoint

        defaults = jobs.Defaults(
            image=image, gpu_image=gpu_image, cpu_queue=config["batch_queue"], gpu_queue=config["batch_gpu_queue"],
            cpu=config["cpu"], memory=config["memory"], gpu=config["gpu"], job_role=config["batch_job_role"])
        sandbox = is_local_endpoint(config["aws_endpoint_url"] or config["s3_endpoint_url"])
        # describe_jobs is cheap on a local sandbox; on AWS it counts against the account's rate limit.
        values = {"runnable_timeout": config["batch_runnable_timeout"], "sandbox": sandbox,
                  "poll_max": 1.0 if sandbox else 8.0, **tuning}
        return cls(defaults, **values)
