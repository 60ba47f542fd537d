"""The sandbox's moto server: started through :mod:`mfc.sandbox.moto_launcher` (moto with mfc's
shims), checked over HTTP, and told to execute state machines."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from mfc.exceptions import MfcError
from mfc.sandbox import HOST, endpoint
from mfc.sandbox.procs import ProcInfo, await_healthy, spawn

NAME = "moto"
MARKER = "mfc.sandbox.moto_launcher"
START_TIMEOUT = 60.0
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


def command(port: int, label: str) -> list[str]:
    """The command line that runs moto with the shims on ``127.0.0.1:port``."""
    return [sys.executable, "-m", MARKER, "-H", HOST, "-p", str(port), "--label", label]


def environment(port: int) -> dict[str, str]:
    """The server's environment: Batch containers on the host network (they reach the server on
    127.0.0.1) and ``MOTO_PORT``, where moto's Step Functions interpreter calls Batch and S3."""
    env = dict(os.environ)
    env.update({"MOTO_DOCKER_NETWORK_MODE": "host", "MOTO_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    env.pop("MOTO_DOCKER_NETWORK_NAME", None)  # it would win over the network mode
    return env


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether a moto server answers on ``port`` (its ``/moto-api/config`` endpoint)."""
    try:
        with urllib.request.urlopen(f"{endpoint(port)}/moto-api/config", timeout=timeout) as resp:
            json.loads(resp.read() or b"{}")
            return resp.status < 300
    except (OSError, ValueError, urllib.error.URLError):
        return False


def enable_sfn_execution(port: int) -> None:
    """POST moto's config so that state machines really run (the launcher also sets it in-process)."""
    request = urllib.request.Request(f"{endpoint(port)}/moto-api/config", data=json.dumps(SFN_CONFIG).encode(),
                                      method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
    except OSError as exc:
        raise MfcError(f"moto on port {port} refused its Step Functions config: {exc}") from None


def clock(port: int, settings: dict[str, float] | None = None) -> dict[str, Any]:
    """The sandbox's event clock (:mod:`mfc.sandbox.eventclock`): its offset, time and next fire
    times; with ``settings`` (``{"advance": s}`` or ``{"clock_offset": s}``) moved first."""
    url = f"{endpoint(port)}/moto-api/config"
    if settings is None:
        request = urllib.request.Request(url)
    else:
        request = urllib.request.Request(url, data=json.dumps({"mfc": settings}).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read() or b"{}")
    except (OSError, ValueError) as exc:
        raise MfcError(f"the sandbox's moto on port {port} did not answer for its clock: {exc}") from None
    if not isinstance(answer.get("mfc"), dict):
        raise MfcError(f"the moto server on port {port} has no event clock (not started by `mfc sandbox up`?)")
    return answer["mfc"]


def require_moto() -> None:
    """A clear error when moto's server (an optional dependency) is not installed."""
    import importlib.util

    missing = [m for m in ("moto", "flask", "flask_cors") if importlib.util.find_spec(m) is None]
    if missing:
        raise MfcError(f"the sandbox needs moto's server ({', '.join(missing)} missing): "
                       "pip install 'moto[server]>=5.0,<6'")


def start(state_dir: str, port: int, label: str) -> ProcInfo:
    """Start moto detached, wait until it answers, and return its record (not yet written)."""
    require_moto()
    log = os.path.join(state_dir, "moto.log")
    info = spawn(NAME, command(port, label), port, log, MARKER, env=environment(port))
    return await_healthy(info, lambda: healthy(port, timeout=1.0), START_TIMEOUT, f"the moto server on {HOST}:{port}")
