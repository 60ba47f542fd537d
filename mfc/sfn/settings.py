"""What the Step Functions compiler is given besides the graph: :class:`SfnSettings`, plain data
resolved once (from the flow's decorators, the config and the deployment's images and code
package) so that :func:`mfc.sfn.compiler.compile_definition` stays a pure function of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mfc.runner.batch_jobs import JobSettings

MAP_MODES = ("auto", "inline", "distributed")
STATE_MACHINE_NAME_LIMIT = 80


@dataclass(frozen=True)
class StepSettings:
    """One step's state: its Batch job, ``@retry`` (times, seconds between), whether it has
    ``@catch``, its ``@timeout`` in seconds as written (the job's is at least Batch's 60 s)."""

    job: JobSettings
    retries: int = 0
    retry_delay: float = 0.0
    catch: bool = False
    timeout: float | None = None


@dataclass(frozen=True)
class SfnSettings:
    """Everything a state machine is compiled from, besides the graph.

    ``code_sha256``/``flow_file``: the code package and the flow file inside it;
    ``environment``: variables every job gets (region, endpoints); ``max_workers``: MaxConcurrency
    of each Map; ``max_num_splits``: the largest fan-out a foreach may have (what the Map mode and
    the history estimate are judged for); ``map_modes``: ``auto|inline|distributed`` per foreach
    step (``"*"`` for every one); ``run_info``: what the first task records about the run (user,
    tags, deployment) beside what it learns itself; ``exit_hook_job``: the Batch job the
    ``@exit_hook`` states run (the flow's image, default resources), None without ``@exit_hook``."""

    flow_name: str
    state_machine_name: str
    datastore_root: str
    code_sha256: str
    flow_file: str
    steps: dict[str, StepSettings]
    environment: dict[str, str] = field(default_factory=dict)
    max_workers: int = 16
    max_num_splits: int = 100
    map_modes: dict[str, str] = field(default_factory=dict)
    workflow_timeout: int | None = None
    user: str = ""
    tags: tuple[str, ...] = ()
    exit_hook_job: JobSettings | None = None  # where ``@exit_hook``'s hooks run; None: the flow has none

    def map_mode(self, step: str) -> str:
        return self.map_modes.get(step) or self.map_modes.get("*") or "auto"


def state_machine_name(flow_name: str, project: str | None = None, branch: str | None = None) -> str:
    """The state machine's name: the flow's (``<project>.<branch>.<flow>`` with ``@project``),
    only the characters Step Functions allows, at most 80: a longer name keeps its head and ends
    in a hash of the whole, so two long names never collide."""
    import re

    full = ".".join(p for p in (project, branch, flow_name) if p)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", full)
    if len(name) <= STATE_MACHINE_NAME_LIMIT:
        return name
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{name[:STATE_MACHINE_NAME_LIMIT - 11]}-{digest}"
