"""Helpers for the containers mfc starts on a Docker engine: names, labels, resource limits,
GPU device requests, preflight checks (image, NVIDIA runtime) and the cleanup of leftovers.

The docker SDK is imported inside the functions that need it, never at module import.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from mfc.exceptions import MfcError
from mfc.runner.taskspec import TaskSpec

LABEL_FLOW = "io.mfc.flow"
LABEL_RUN = "io.mfc.run"
LABEL_STEP = "io.mfc.step"
LABEL_TASK = "io.mfc.task"
LABEL_ATTEMPT = "io.mfc.attempt"
NVIDIA_HINT = ("install nvidia-container-toolkit (https://docs.nvidia.com/datacenter/cloud-native/"
               "container-toolkit/latest/install-guide.html), run `nvidia-ctk runtime configure "
               "--runtime=docker` and restart the engine, or run without GPUs")
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_.-]+")


def container_name(spec: TaskSpec) -> str:
    """``mfc-<run>-<step>-<task>-<attempt>``, reduced to the characters Docker allows in names."""
    raw = f"mfc-{spec.run_id}-{spec.step}-{spec.task_id}-{spec.attempt}"
    return _NAME_BAD.sub("_", raw)[:200]


def container_labels(spec: TaskSpec) -> dict[str, str]:
    """The ``io.mfc.*`` labels that tie a container to its task (``mfc cleanup`` looks for them)."""
    return {
        LABEL_FLOW: spec.flow_name, LABEL_RUN: spec.run_id, LABEL_STEP: spec.step,
        LABEL_TASK: spec.task_id, LABEL_ATTEMPT: str(spec.attempt),
    }


def gpu_device_requests(count: int) -> list[Any]:
    """Device requests for ``count`` NVIDIA GPUs (``-1``: all of them), as ``docker run --gpus N``."""
    if count == 0:
        return []
    from docker.types import DeviceRequest

    return [DeviceRequest(count=int(count), capabilities=[["gpu"]])]


def resource_limits(resources: dict[str, Any], engine_cpus: int | None = None) -> dict[str, Any]:
    """Host-config keyword arguments for a step's ``@resources``: ``cpu`` (cores, capped at the
    engine's) -> ``nano_cpus``, ``memory`` MB -> ``mem_limit`` (swap off, so the limit holds),
    ``shared_memory`` MB -> ``shm_size``."""
    limits: dict[str, Any] = {}
    cpu = resources.get("cpu")
    if cpu:
        cores = float(cpu)
        if engine_cpus:
            cores = min(cores, float(engine_cpus))
        limits["nano_cpus"] = int(cores * 1e9)
    memory = resources.get("memory")
    if memory:
        limits["mem_limit"] = f"{int(memory)}m"
        limits["memswap_limit"] = f"{int(memory)}m"
    shm = resources.get("shared_memory")
    if shm:
        limits["shm_size"] = f"{int(shm)}m"
    return limits


def check_image(client: Any, image: str) -> None:
    """Raise :class:`MfcError` naming ``image`` and how to build it when the engine lacks it."""
    import docker.errors

    try:
        client.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        raise MfcError(f"Docker image {image} is not on this engine",
                       hint="build it with `make image` (mfc-base) or `mfc image build flow.py`") from None


def check_gpu_support(has_nvidia: bool, count: int, what: str) -> None:
    """Raise :class:`MfcError` when ``count`` GPUs are asked for (by ``what``: ``--gpu 1``,
    ``step train's @resources(gpu=1)``) but the engine cannot give containers GPUs."""
    if count and not has_nvidia:
        raise MfcError(f"{what}: this Docker engine has no NVIDIA runtime; {NVIDIA_HINT}")


@dataclass
class Leftover:
    """An mfc container found on the engine."""

    id: str
    name: str
    state: str  # created, running, exited, dead, ...
    status: str  # Docker's words: "Exited (1) 5 minutes ago"
    labels: dict[str, str]

    @property
    def task(self) -> str:
        """``Flow/run/step/task attempt N`` from the labels."""
        lab = self.labels
        return (f"{lab.get(LABEL_FLOW, '?')}/{lab.get(LABEL_RUN, '?')}/{lab.get(LABEL_STEP, '?')}/"
                f"{lab.get(LABEL_TASK, '?')} attempt {lab.get(LABEL_ATTEMPT, '?')}")


def find_containers(client: Any, run_id: str | None = None) -> list[Leftover]:
    """Every container with an ``io.mfc.run`` label (of ``run_id`` only, when given), any state."""
    label = f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN
    found = client.api.containers(all=True, filters={"label": label})
    return [Leftover(c["Id"], (c.get("Names") or ["/?"])[0].lstrip("/"), c.get("State", ""),
                     c.get("Status", ""), c.get("Labels") or {}) for c in found]


def cleanup_containers(client: Any, include_running: bool = False, dry_run: bool = False,
                       run_id: str | None = None, grace: float = 2.0) -> tuple[list[Leftover], list[Leftover]]:
    """Remove leftover mfc containers (of ``run_id`` only, when given): stopped ones, and with
    ``include_running`` running ones too (stopped with ``grace`` seconds first). Returns
    ``(removed, kept)``; with ``dry_run`` nothing is touched and ``removed`` lists what would go."""
    import docker.errors

    removed: list[Leftover] = []
    kept: list[Leftover] = []
    for box in find_containers(client, run_id):
        active = box.state in ("running", "restarting", "paused")
        if active and not include_running:
            kept.append(box)
            continue
        if not dry_run:
            try:
                if active:
                    client.api.stop(box.id, timeout=max(1, round(grace)))
                client.api.remove_container(box.id, force=True)
            except docker.errors.NotFound:
                pass  # gone already (its executor removed it meanwhile)
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise MfcError(f"could not remove container {box.name}: {exc.explanation or exc}") from None
        removed.append(box)
    return removed, kept


def wait_gone(client: Any, ids: list[str], timeout: float = 10.0) -> list[str]:
    """Wait until none of ``ids`` exists any more; returns those still there at ``timeout``."""
    import docker.errors

    deadline = time.monotonic() + timeout
    left = list(ids)
    while left and time.monotonic() < deadline:
        still = []
        for cid in left:
            try:
                client.api.inspect_container(cid)
                still.append(cid)
            except docker.errors.NotFound:
                pass
        left = still
        if left:
            time.sleep(0.05)
    return left
