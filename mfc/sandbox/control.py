"""``mfc sandbox up|status|down``: the sandbox's life cycle over its state directory.

The state directory holds ``sandbox.json`` (ports, label, the config file the profile went to),
one pid file and one log per process (``moto``, ``registry``) and the registry's storage.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from mfc.config import config_path
from mfc.exceptions import MfcError
from mfc.sandbox import (
    DEFAULT_PORT,
    DEFAULT_REGISTRY_PORT,
    HOST,
    PROFILE,
    REGION,
    default_state_dir,
    endpoint,
    moto_server,
    procs,
    registry,
)
from mfc.sandbox.moto_shims import CONTAINER_LABEL

Echo = Callable[[str], None]
STATE_FILE = "sandbox.json"


def _quiet(_: str) -> None:
    pass


def _state_dir(state_dir: str | None) -> str:
    return os.path.abspath(os.path.expanduser(state_dir or default_state_dir()))


def load_state(state_dir: str) -> dict[str, Any]:
    """``sandbox.json`` of a state directory ({} when there is none)."""
    try:
        with open(os.path.join(state_dir, STATE_FILE)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _save_state(state_dir: str, state: dict[str, Any]) -> None:
    path = os.path.join(state_dir, STATE_FILE)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, path)


def _running(state_dir: str, name: str) -> procs.ProcInfo | None:
    info = procs.read_pid(state_dir, name)
    if info is not None and not info.alive():
        procs.remove_pid(state_dir, name)  # stale: the process is gone
        return None
    return info


def _check_port(state_dir: str, name: str, want: int, info: procs.ProcInfo | None, flag: str) -> None:
    if info is not None and info.port != want:
        raise MfcError(f"the sandbox in {state_dir} already runs its {name} on port {info.port}: "
                       f"run `mfc sandbox down` first, or pass {flag} {info.port}")
    if info is None and procs.port_open(want):
        raise MfcError(f"port {want} on {HOST} is in use by another program: pick a free one with {flag} PORT")


def _ensure_process(state_dir: str, name: str, port: int, start: Callable[[], procs.ProcInfo],
                    healthy: Callable[[int], bool], echo: Echo) -> bool:
    """Reuse a healthy recorded process or start one; True when it was started now."""
    info = _running(state_dir, name)
    if info is not None:
        if procs.wait_until(lambda: healthy(port), 15.0, interval=0.3):
            echo(f"{name}: already running (pid {info.pid}, port {port})")
            return False
        raise MfcError(f"the sandbox's {name} (pid {info.pid}) runs but does not answer on port {port} "
                       f"(log {info.log}): run `mfc sandbox down`, then `mfc sandbox up`")
    t0 = time.monotonic()
    info = start()
    procs.write_pid(state_dir, info)
    echo(f"{name}: started (pid {info.pid}, port {port}, {time.monotonic() - t0:.1f}s; log {info.log})")
    return True


def profile_values(port: int, registry_port: int, stack: dict[str, Any]) -> dict[str, Any]:
    """The settings of the ``sandbox`` profile (keys of :data:`mfc.config.SETTINGS`): those the
    stack's outputs fill (``stack``, see :func:`mfc.sandbox.resources.ensure`), with moto's
    endpoints and the sandbox's own registry instead of ECR."""
    return {
        "datastore_root": stack["datastore_root"],
        "aws_region": REGION,
        "aws_endpoint_url": endpoint(port),
        "s3_endpoint_url": endpoint(port),
        "batch_queue": stack["batch_queue"],
        "batch_gpu_queue": stack["batch_gpu_queue"],
        "batch_job_role": stack["batch_job_role"],
        "image_registry": f"{HOST}:{registry_port}",
        "sfn_role": stack["sfn_role"],
        "events_role": stack["events_role"],
        # No aws_stack: the sandbox's Batch containers read this file with the image's mfc, which
        # may predate that setting (and refuses a profile with a setting it does not know).
    }


def up(state_dir: str | None = None, port: int | None = None, registry_port: int | None = None,
       echo: Echo = _quiet) -> dict[str, Any]:
    """Start (or find running) moto and the registry, create the resources, write the profile.
    Idempotent. Returns :func:`status` plus ``timings`` (seconds per phase)."""
    from mfc.sandbox import profile, resources

    state_dir = _state_dir(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    state = load_state(state_dir)
    moto_info, reg_info = _running(state_dir, moto_server.NAME), _running(state_dir, registry.NAME)
    port = port or (moto_info.port if moto_info else None) or DEFAULT_PORT
    registry_port = registry_port or (reg_info.port if reg_info else None) or DEFAULT_REGISTRY_PORT
    if port == registry_port:
        raise MfcError(f"--port and --registry-port are both {port}: pick two different ports")
    _check_port(state_dir, "moto server", port, moto_info, "--port")
    _check_port(state_dir, "image registry", registry_port, reg_info, "--registry-port")

    ok, reason = _docker()
    if not ok:
        echo(f"warning: {reason}; Batch jobs cannot run and images cannot be pushed until an engine answers")
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    _ensure_process(state_dir, moto_server.NAME, port, lambda: moto_server.start(state_dir, port, state_dir),
                    moto_server.healthy, echo)
    moto_server.enable_sfn_execution(port)
    timings["moto"] = time.monotonic() - t0
    t0 = time.monotonic()
    _ensure_process(state_dir, registry.NAME, registry_port, lambda: registry.start(state_dir, registry_port, echo),
                    registry.healthy, echo)
    timings["registry"] = time.monotonic() - t0
    t0 = time.monotonic()
    arns = resources.ensure(port)
    timings["resources"] = time.monotonic() - t0

    cfg = config_path()
    profile.write_profile(cfg, PROFILE, profile_values(port, registry_port, arns),
                          comment="Written by `mfc sandbox up`; `mfc sandbox down --forget` removes it.")
    state.update({"port": port, "registry_port": registry_port, "label": state_dir, "config": cfg,
                  "profile": PROFILE, "updated_at": time.time()})
    _save_state(state_dir, state)
    result = status(state_dir)
    result["timings"] = {k: round(v, 2) for k, v in timings.items()}
    return result


def _docker() -> tuple[bool, str]:
    from mfc.builder.engine import docker_available

    return docker_available()


def _component(state_dir: str, name: str, port: int | None, healthy: Callable[[int], bool]) -> dict[str, Any]:
    info = _running(state_dir, name)
    port = info.port if info else port
    return {
        "name": name,
        "pid": info.pid if info else None,
        "port": port,
        "running": info is not None,
        "healthy": bool(info and port and healthy(port)),
        "log": os.path.join(state_dir, f"{name}.log"),
    }


def status(state_dir: str | None = None) -> dict[str, Any]:
    """Each component (pid, port, running, healthy) and, when moto answers, the resources found."""
    state_dir = _state_dir(state_dir)
    state = load_state(state_dir)
    moto = _component(state_dir, moto_server.NAME, state.get("port"), moto_server.healthy)
    reg = _component(state_dir, registry.NAME, state.get("registry_port"), registry.healthy)
    result: dict[str, Any] = {
        "state_dir": state_dir,
        "endpoint": endpoint(moto["port"]) if moto["port"] else None,
        "image_registry": f"{HOST}:{reg['port']}" if reg["port"] else None,
        "profile": state.get("profile"),
        "config": state.get("config"),
        "components": [moto, reg],
        "healthy": moto["healthy"] and reg["healthy"],
        "resources": None,
    }
    if moto["healthy"]:
        from mfc.sandbox import resources, schedules

        try:
            result["resources"] = resources.describe(moto["port"])
        except Exception as exc:  # noqa: BLE001 - status reports, it does not fail
            result["resources_error"] = f"{type(exc).__name__}: {exc}"
        try:
            result.update(schedules.list_schedules(moto["port"]))
        except Exception as exc:  # noqa: BLE001
            result["schedules_error"] = f"{type(exc).__name__}: {exc}"
    return result


def advance_clock(seconds: float, state_dir: str | None = None) -> dict[str, Any]:
    """Move the sandbox's event clock ``seconds`` ahead (schedules whose fire times it passes start
    their executions before this returns); returns the clock (offset, now, next fire times)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise MfcError(f"the sandbox's clock only moves ahead by a number of seconds, not {seconds!r}")
    state_dir = _state_dir(state_dir)
    info = _running(state_dir, moto_server.NAME)
    if info is None:
        raise MfcError(f"no sandbox runs in {state_dir}: run `mfc sandbox up` first")
    return moto_server.clock(info.port, {"advance": seconds})


def remove_containers(label: str) -> int:
    """Stop and remove the containers moto's Batch left behind (label ``mfc.sandbox=<label>``);
    0 when no Docker engine answers."""
    ok, _ = _docker()
    if not ok:
        return 0
    from mfc.builder.engine import docker_client

    client = docker_client()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"{CONTAINER_LABEL}={label}"}):
        try:
            container.remove(force=True)
            removed += 1
        except Exception:  # noqa: BLE001 - already gone
            pass
    return removed


def down(state_dir: str | None = None, forget: bool = False, echo: Echo = _quiet) -> dict[str, Any]:
    """Stop what :func:`up` started (SIGTERM, then SIGKILL), remove pid files and leftover job
    containers; with ``forget`` also remove the profile it wrote. Returns what was done."""
    from mfc.sandbox import profile

    state_dir = _state_dir(state_dir)
    state = load_state(state_dir)
    stopped: list[str] = []
    for name in (moto_server.NAME, registry.NAME):  # moto first: it starts no new job containers after
        info = procs.read_pid(state_dir, name)
        if info is not None and procs.stop(info.pid, info.marker):
            stopped.append(name)
            echo(f"{name}: stopped (pid {info.pid})")
        elif info is not None:
            echo(f"{name}: was not running (stale pid file removed)")
        procs.remove_pid(state_dir, name)
    removed = remove_containers(state.get("label") or state_dir)
    if removed:
        echo(f"removed {removed} leftover Batch job container(s)")
    cfg, name = state.get("config") or config_path(), state.get("profile") or PROFILE
    forgotten = False
    if forget:
        forgotten = profile.remove_profile(cfg, name)
        echo(f"profile {name!r} removed from {cfg}" if forgotten else f"profile {name!r} was not in {cfg}")
    elif profile.read_profile(cfg, name) is not None:
        echo(f"profile {name!r} stays in {cfg} (`mfc sandbox up` brings its endpoints back; "
             "`mfc sandbox down --forget` removes it)")
    if not stopped and not removed:
        echo(f"nothing was running in {state_dir}")
    return {"state_dir": state_dir, "stopped": stopped, "containers_removed": removed, "profile_removed": forgotten}
