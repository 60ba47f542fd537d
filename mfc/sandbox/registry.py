"""The sandbox's image registry: Debian's ``docker-registry`` (Docker's distribution, registry API
v2) with its own config, storage under the state directory, on ``127.0.0.1:PORT``. moto's ECR
keeps no image layers, so flow images are pushed here. Docker treats registries on 127.0.0.0/8 as
insecure by default, so plain HTTP needs no engine configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

from mfc.exceptions import MfcError
from mfc.sandbox import HOST
from mfc.sandbox.procs import ProcInfo, await_healthy, log_tail, spawn

NAME = "registry"
BINARY = "docker-registry"
PACKAGE = "docker-registry"
START_TIMEOUT = 30.0
INSTALL_HINT = (f"install it with `sudo apt-get install -y {PACKAGE}` (Debian/Ubuntu), or point "
                "MFC_SANDBOX_REGISTRY_BIN at a Docker distribution `registry` binary")

CONFIG_TEMPLATE = """\
# Written by `mfc sandbox up`; rewritten on each start.
version: 0.1
log:
  level: info
  fields:
    service: mfc-sandbox-registry
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {host}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def find_binary() -> str | None:
    """``$MFC_SANDBOX_REGISTRY_BIN``, else ``docker-registry`` on PATH or in /usr/bin."""
    override = os.environ.get("MFC_SANDBOX_REGISTRY_BIN")
    if override:
        return override if os.access(override, os.X_OK) else None
    found = shutil.which(BINARY)
    if found:
        return found
    fallback = f"/usr/bin/{BINARY}"
    return fallback if os.access(fallback, os.X_OK) else None


def ensure_binary(log_path: str, echo: Callable[[str], object] = print) -> str:
    """The registry binary; installs Debian's package with apt-get when missing and we are root."""
    found = find_binary()
    if found:
        return found
    if os.environ.get("MFC_SANDBOX_REGISTRY_BIN"):
        raise MfcError(f"MFC_SANDBOX_REGISTRY_BIN={os.environ['MFC_SANDBOX_REGISTRY_BIN']} is not an executable file")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise MfcError(f"the sandbox needs an image registry and `{BINARY}` is not installed: {INSTALL_HINT}")
    echo(f"installing {PACKAGE} with apt-get (log: {log_path})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", PACKAGE]
    with open(log_path, "ab") as log:
        ok = subprocess.call(install, stdout=log, stderr=subprocess.STDOUT, env=env) == 0
        if not ok:  # a stale package index is the usual cause
            subprocess.call(["apt-get", "update", "-q"], stdout=log, stderr=subprocess.STDOUT, env=env)
            ok = subprocess.call(install, stdout=log, stderr=subprocess.STDOUT, env=env) == 0
    found = find_binary()
    if not ok or not found:
        raise MfcError(f"apt-get could not install {PACKAGE} (log {log_path}):\n{log_tail(log_path, 8)}")
    return found


def write_config(state_dir: str, port: int) -> str:
    """Write the registry's config (storage in ``<state_dir>/registry``) and return its path."""
    root = os.path.join(state_dir, "registry")
    os.makedirs(root, exist_ok=True)
    path = os.path.join(state_dir, "registry.yml")
    with open(path, "w") as fh:
        fh.write(CONFIG_TEMPLATE.format(root=json.dumps(root), host=HOST, port=port))
    return path


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether a registry answers the v2 API base check (``GET /v2/`` -> 200) on ``port``."""
    try:
        with urllib.request.urlopen(f"{url(port)}/v2/", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def catalog(port: int) -> list[str]:
    """The repositories the registry holds (``GET /v2/_catalog``)."""
    with urllib.request.urlopen(f"{url(port)}/v2/_catalog", timeout=10) as resp:
        return json.loads(resp.read()).get("repositories") or []


def tags(port: int, repository: str) -> list[str]:
    """The tags of one repository (``GET /v2/<name>/tags/list``)."""
    with urllib.request.urlopen(f"{url(port)}/v2/{repository}/tags/list", timeout=10) as resp:
        return json.loads(resp.read()).get("tags") or []


def start(state_dir: str, port: int, echo: Callable[[str], object] = print) -> ProcInfo:
    """Start the registry detached, wait until it answers, and return its record (not yet written)."""
    log = os.path.join(state_dir, "registry.log")
    binary = ensure_binary(log, echo)
    config = write_config(state_dir, port)
    # The config path is unique to this state directory: it identifies the process.
    info = spawn(NAME, [binary, "serve", config], port, log, marker=config)
    return await_healthy(info, lambda: healthy(port, timeout=1.0), START_TIMEOUT,
                         f"the image registry on {HOST}:{port}")
