"""Shared fixtures: a fresh datastore root per test, a moto S3 server per test module, and the
sandbox (moto with Batch running real containers, the registry, the base image pushed there) for
the modules that run flows on it (Batch, Step Functions)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest
from docker_helpers import base_image_tag, docker_required, require_docker, require_image
from moto_server import MotoServer, free_ports
from service_support import db_url  # noqa: F401 - the fixture: a service database, SQLite and PostgreSQL

from mfc.sandbox import registry as sandbox_registry


@pytest.fixture
def root(tmp_path):
    """A datastore root directory for one test (``MFC_DATASTORE_ROOT`` of its subprocesses)."""
    path = tmp_path / "ds"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def moto():
    """A moto server over HTTP for one test module (each test makes its own bucket)."""
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    if not sandbox_registry.find_binary() and not (os.geteuid() == 0 and shutil.which("apt-get")):
        reason = f"docker-registry is not installed: {sandbox_registry.INSTALL_HINT}"
        pytest.fail(reason, pytrace=False) if docker_required() else pytest.skip(reason)
    from mfc.sandbox import control

    tmp = tmp_path_factory.mktemp("batch")
    config = tmp / "config.toml"
    config.write_text("")
    port, registry_port = free_ports(2)
    state = str(tmp / "state")
    patch = pytest.MonkeyPatch()
    patch.setenv("MFC_CONFIG", str(config))
    patch.setenv("MFC_PROFILE", "sandbox")
    for var in ("MFC_DATASTORE_ROOT", "MFC_AWS_ENDPOINT_URL", "MFC_S3_ENDPOINT_URL", "MFC_BATCH_QUEUE",
                "MFC_BATCH_GPU_QUEUE", "MFC_IMAGE_REGISTRY", "MFC_BATCH_RUNNABLE_TIMEOUT"):
        patch.delenv(var, raising=False)
    try:
        t0 = time.monotonic()
        control.up(state_dir=state, port=port, registry_port=registry_port)
        yield SimpleNamespace(port=port, registry_port=registry_port, state=state, config=config, tmp=tmp,
                              up_seconds=time.monotonic() - t0)
    finally:
        control.down(state_dir=state)
        patch.undo()


@pytest.fixture(scope="module")
def images(sandbox):
    """The base image pushed to the sandbox's registry twice: as the CPU and as the "GPU" image."""
    engine = require_docker()
    base = base_image_tag()
    require_image(engine, base)
    engine.close()
    version = base.split(":", 1)[1]
    pushed = {kind: f"127.0.0.1:{sandbox.registry_port}/{repo}:{version}"
              for kind, repo in (("cpu", "mfc-base"), ("gpu", "mfc-base-gpu-test"))}
    t0 = time.monotonic()
    for ref in pushed.values():
        subprocess.run(["docker", "tag", base, ref], check=True, capture_output=True)
        subprocess.run(["docker", "push", ref], check=True, capture_output=True)
    pushed["push_seconds"] = round(time.monotonic() - t0, 1)
    yield pushed
    for ref in (pushed["cpu"], pushed["gpu"]):
        subprocess.run(["docker", "rmi", ref], capture_output=True)


@pytest.fixture(scope="module")
def deploy(sandbox, images, tmp_path_factory):
    """``deploy(flow, *create_args)``: a flow deployed to Step Functions in the sandbox (see
    tests/sfn_support.py)."""
    from sfn_support import deployer

    return deployer(sandbox, images["cpu"], tmp_path_factory)
