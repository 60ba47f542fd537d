"""Reaching the Docker engine: one client factory with a clear error, and capability checks.

The docker SDK is imported inside the functions: the flow runtime imports mfc modules at
task start and must not pay for it.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

from mfc.exceptions import MfcError

if TYPE_CHECKING:
    import docker

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
START_HINT = "Start it with `make docker-up` (or `sudo dockerd &`)"


def engine_url() -> str:
    """The engine address the docker SDK will use: ``$DOCKER_HOST`` or the default unix socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _reason(exc: BaseException) -> str:
    """A short cause for an unreachable engine, from the innermost OS-level error if any."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, FileNotFoundError):
            return "no such socket"
        if isinstance(err, PermissionError):
            return "permission denied (run as root or join the docker group)"
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, TimeoutError):
            return "timed out"
        # requests/urllib3 hide the OS error in args (e.g. ProtocolError('...', FileNotFoundError(...))).
        todo.extend(a for a in getattr(err, "args", ()) if isinstance(a, BaseException))
        todo.extend(e for e in (err.__cause__, err.__context__) if e is not None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def docker_client(timeout: float = 60) -> docker.DockerClient:
    """A docker SDK client for the engine at :func:`engine_url`, checked with a ping.

    ``timeout`` is the SDK's per-request timeout in seconds. Raises :class:`MfcError` with
    the address, the cause and how to start an engine when none answers.
    """
    url = engine_url()
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:
        raise MfcError(
            f"the docker Python package is missing ({exc}); install it with `pip install 'docker>=7'`"
        ) from None
    try:
        # from_env honours DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH; without a version
        # the SDK asks the engine for its API version instead of assuming one.
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        raise MfcError(f"Docker engine is not reachable at {url}: {_reason(exc)}. {START_HINT}") from None
    return client


def engine_has_nvidia_runtime(client: Any) -> bool:
    """Whether containers on this engine can get NVIDIA GPUs (``--gpus`` / device requests).

    True when the engine lists an ``nvidia`` runtime (``docker info`` Runtimes), or, for an
    engine on this machine, when the NVIDIA container toolkit's hook is installed: the
    toolkit's hook mode serves ``--gpus`` without registering a runtime.
    """
    info = client.info()
    runtimes = info.get("Runtimes") or {}
    if any("nvidia" in name.lower() for name in runtimes) or "nvidia" in str(info.get("DefaultRuntime", "")):
        return True
    local = engine_url().startswith("unix://")
    return local and shutil.which("nvidia-container-runtime-hook") is not None


def docker_available(timeout: float = 3) -> tuple[bool, str]:
    """Fast check for an engine: ``(True, "Docker <version> at <url>")`` or ``(False, reason)``.

    Never raises. Meant for tests and ``mfc doctor``-style reports, not for control flow
    that should fail loudly (use :func:`docker_client` there).
    """
    url = engine_url()
    if url.startswith("unix://") and not os.path.exists(url[len("unix://") :]):
        return False, f"Docker engine is not reachable at {url}: no such socket. {START_HINT}"
    try:
        client = docker_client(timeout=timeout)
    except MfcError as exc:
        return False, str(exc)
    try:
        version = client.version().get("Version", "?")
    except Exception as exc:  # the engine answered ping; a failing version call is still "up"
        version = f"? ({_reason(exc)})"
    finally:
        client.close()
    return True, f"Docker {version} at {url}"
