"""Resolving :class:`SfnSettings` for a flow: its steps' decorators (``@retry``, ``@catch``,
``@timeout``, ``@resources``, ``@batch``, ``@environment``), the config (queues, job role,
resources, ``max_workers``, ``max_num_splits``, endpoints) and the deployment's images and code
package. Reads the flow class, never AWS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mfc.exceptions import MfcError
from mfc.graph import FlowGraph
from mfc.sfn.settings import MAP_MODES, SfnSettings, StepSettings, state_machine_name

PLACEHOLDER_IMAGE = "mfc-flow-{flow}:unbuilt"  # compile without --image: `mfc sfn create` builds the real one


@dataclass
class DeployOptions:
    """The ``mfc sfn compile/lint/create`` choices beyond the config: Map modes (``STEP=MODE`` or
    ``MODE``), tags, the workflow timeout, a state machine name."""

    map_modes: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    workflow_timeout: int | None = None
    name: str | None = None


def parse_map_modes(values: list[str], graph: FlowGraph) -> dict[str, str]:
    """``["distributed"]`` -> ``{"*": "distributed"}``; ``["a=inline"]`` -> ``{"a": "inline"}``."""
    modes: dict[str, str] = {}
    foreach = [n.name for n in graph if n.foreach_var is not None]
    for value in values:
        step, eq, mode = value.rpartition("=")
        step = step if eq else "*"
        if mode not in MAP_MODES:
            raise MfcError(f"--map-mode {value}: the mode is one of {', '.join(MAP_MODES)}")
        if step != "*" and step not in foreach:
            raise MfcError(f"--map-mode {value}: {step!r} is not a foreach step "
                           f"(foreach steps: {', '.join(foreach) or 'none'})")
        modes[step] = mode
    return modes


def job_environment(config: Any) -> dict[str, str]:
    """What every job of the state machine needs to reach AWS the way this config does: the
    region and, for a local sandbox, its endpoints and dummy credentials (never real ones: on
    AWS the job role gives them)."""
    from mfc.aws import SANDBOX_KEY, is_local_endpoint

    env = {"AWS_DEFAULT_REGION": str(config["aws_region"])}
    for key in ("aws_endpoint_url", "s3_endpoint_url"):
        if config[key]:
            env[f"MFC_{key.upper()}"] = str(config[key])
    if is_local_endpoint(config["aws_endpoint_url"] or config["s3_endpoint_url"]):
        env.update(AWS_ACCESS_KEY_ID=SANDBOX_KEY, AWS_SECRET_ACCESS_KEY=SANDBOX_KEY)
    from mfc.stores.service_metadata import metadata_env

    env.update(metadata_env(config))
    return env


def sfn_settings(flow_cls: type, graph: FlowGraph, config: Any, code: dict[str, str], image: str,
                 gpu_image: str | None, options: DeployOptions) -> SfnSettings:
    """The settings of ``graph``'s state machine (see the module docstring)."""
    from mfc.decorators import project_info
    from mfc.runner import batch_jobs as jobs
    from mfc.runner.policy import step_policies
    from mfc.runner.settings import BatchSettings

    policies = step_policies(flow_cls, list(graph.nodes))
    defaults = BatchSettings.from_config(config, image, gpu_image or image).defaults
    steps = {}
    for name, policy in policies.items():
        decorators = policy.decorators
        attrs = decorators["batch"].attributes if "batch" in decorators else None
        job = jobs.step_settings(name, policy.resources, attrs, policy.timeout, defaults)
        steps[name] = StepSettings(job, policy.retries, policy.retry_delay, policy.catch, policy.timeout)
    user = str(config["user"] or "")
    project = project_info(flow_cls, user)
    name = options.name or state_machine_name(
        flow_cls.__name__, project["project_name"] if project else None, project["branch_name"] if project else None)
    return SfnSettings(
        flow_name=flow_cls.__name__, state_machine_name=name, datastore_root=str(config.datastore_root),
        code_sha256=code["sha256"], flow_file=code["flow_file"], steps=steps, environment=job_environment(config),
        max_workers=int(config["max_workers"]), max_num_splits=int(config["max_num_splits"]),
        map_modes=parse_map_modes(options.map_modes, graph), workflow_timeout=options.workflow_timeout,
        user=user, tags=tuple(sorted(set(options.tags))),
        exit_hook_job=_exit_hook_job(flow_cls, steps, defaults),
    )


def _exit_hook_job(flow_cls: type, steps: dict[str, StepSettings], defaults: Any) -> Any:
    """The job ``@exit_hook``'s states run: default resources in the flow's image on the default
    queue (the end step's image or queue where there is none: every step names its own image
    with ``@batch(image=)``, only a GPU queue is configured); None without ``@exit_hook``."""
    import dataclasses

    from mfc.runner.batch_jobs import step_settings

    if getattr(flow_cls, "_flow_decorators", {}).get("exit_hook") is None:
        return None
    end = steps["end"].job
    if defaults.queue or defaults.cpu_queue:
        job = step_settings("exit hooks", {}, None, None, defaults)
    else:
        job = dataclasses.replace(end, image=defaults.image, cpu=1, memory=4096, gpu=0, shared_memory=None,
                                  timeout=None, tags=())
    return job if job.image else dataclasses.replace(job, image=end.image)
