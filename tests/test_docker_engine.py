"""The Docker engine plumbing and the mfc-base image that `make image` builds.

Engine-free tests check the error paths of mfc.builder.engine against real sockets.
Tests marked ``docker`` need an engine and the image (`make docker-up image`); without
them they skip, or fail under CI=true / MFC_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from docker_helpers import (
    REPO_ROOT,
    base_image_tag,
    project_version,
    require_docker,
    require_image,
    run_in_image,
)

from mfc.builder.engine import docker_available, docker_client, engine_has_nvidia_runtime
from mfc.exceptions import MfcError


@pytest.fixture(scope="module")
def engine():
    client = require_docker()
    yield client
    client.close()


@pytest.fixture(scope="module")
def base_image(engine) -> str:
    tag = base_image_tag()
    require_image(engine, tag)
    return tag


# --- engine errors, no engine needed ---------------------------------------------------------


def test_unreachable_socket_is_one_clear_error(tmp_path, monkeypatch):
    url = f"unix://{tmp_path}/missing.sock"
    monkeypatch.setenv("DOCKER_HOST", url)
    with pytest.raises(MfcError) as err:
        docker_client(timeout=2)
    message = str(err.value)
    assert message.startswith(f"Docker engine is not reachable at {url}: no such socket.")
    assert "make docker-up" in message and "\n" not in message


def test_refusing_socket_reports_connection_refused(tmp_path, monkeypatch):
    path = tmp_path / "refuse.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))  # bound but never listening: connect() gets ECONNREFUSED
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        ok, reason = docker_available(timeout=2)
    finally:
        sock.close()
    assert not ok
    assert "connection refused" in reason and str(path) in reason


def test_docker_available_is_fast_without_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    start = time.monotonic()
    ok, reason = docker_available()
    assert not ok and "no such socket" in reason
    assert time.monotonic() - start < 0.5


class _Info:
    """Stand-in for a client whose engine reports the given `docker info` payload."""

    def __init__(self, info: dict):
        self._info = info

    def info(self) -> dict:
        return self._info


def test_nvidia_runtime_detected_from_engine_info(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://engine.invalid:2375")  # remote: no local hook lookup
    assert engine_has_nvidia_runtime(_Info({"Runtimes": {"runc": {}, "nvidia": {"path": "x"}}}))
    assert engine_has_nvidia_runtime(_Info({"Runtimes": {"runc": {}}, "DefaultRuntime": "nvidia"}))
    assert not engine_has_nvidia_runtime(_Info({"Runtimes": {"runc": {}, "io.containerd.runc.v2": {}}}))
    assert not engine_has_nvidia_runtime(_Info({}))


# --- the engine ------------------------------------------------------------------------------


@pytest.mark.docker
def test_engine_answers_and_reports_runtimes(engine, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    ok, reason = docker_available()
    assert ok, reason
    runtimes = engine.info()["Runtimes"]
    assert "runc" in runtimes
    if (
        not any("nvidia" in name for name in runtimes)
        and not Path("/usr/bin/nvidia-container-runtime-hook").exists()
    ):
        assert engine_has_nvidia_runtime(engine) is False


@pytest.mark.docker
def test_docker_up_is_a_fast_noop_when_engine_runs(engine):
    start = time.monotonic()
    subprocess.run(["bash", ".ci/docker-up.sh"], cwd=REPO_ROOT, check=True, timeout=30)
    assert time.monotonic() - start < 5


@pytest.mark.docker
def test_image_gpu_without_cuda_base_fails_in_one_line(engine):
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            ".ci/image.mk",
            "image-gpu",
            "GPU_BASE_IMAGE=mfc-test/no-such-cuda:0",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("image-gpu:")]
    assert len(ours) == 1, result.stderr
    assert "mfc-test/no-such-cuda:0" in ours[0] and "make image-gpu GPU_BASE_IMAGE=" in ours[0]


# --- the mfc-base image ------------------------------------------------------------------------


@pytest.mark.docker
def test_base_image_exists_with_labels_user_and_workdir(engine, base_image):
    attrs = engine.images.get(base_image).attrs
    config = attrs["Config"]
    labels = config["Labels"]
    assert labels["io.mfc.version"] == project_version()
    assert labels["org.opencontainers.image.version"] == project_version()
    assert labels["org.opencontainers.image.title"] == "mfc-base"
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/home/mfc/work"
    assert not config.get("Entrypoint"), "an ENTRYPOINT would break `docker run image python -c ...`"
    path = next(e for e in config["Env"] if e.startswith("PATH="))
    assert path.startswith("PATH=/opt/mfc/venv/bin:")


@pytest.mark.docker
def test_mfc_and_runtime_deps_import_from_the_venv(engine, base_image):
    out = run_in_image(
        engine,
        base_image,
        [
            "python",
            "-c",
            "import mfc, cloudpickle, boto3, docker, rich, click, tenacity; print(mfc.__file__)",
        ],
    )
    assert out.strip().startswith("/opt/mfc/venv/lib/python3.11/site-packages/mfc/")


@pytest.mark.docker
def test_runs_as_uid_1000_with_writable_home_and_workdir(engine, base_image):
    script = (
        "import os, json, pathlib;"
        "pathlib.Path.home().joinpath('probe').write_text('x');"
        "pathlib.Path('probe').write_text('x');"
        "print(json.dumps([os.getuid(), os.getgid(), os.getcwd(), str(pathlib.Path.home())]))"
    )
    uid, gid, cwd, home = json.loads(run_in_image(engine, base_image, ["python", "-c", script]))
    assert (uid, gid) == (1000, 1000)
    assert cwd == "/home/mfc/work" and home == "/home/mfc"


@pytest.mark.docker
def test_python_is_3_11_in_venv_and_matches_pyproject_version(engine, base_image):
    script = (
        "import sys, json, importlib.metadata as m;"
        "print(json.dumps([list(sys.version_info[:2]), sys.prefix, m.version('mfc')]))"
    )
    version, prefix, mfc_version = json.loads(run_in_image(engine, base_image, ["python", "-c", script]))
    assert version == [3, 11]
    assert prefix == "/opt/mfc/venv"
    assert mfc_version == project_version()


@pytest.mark.docker
def test_dependencies_consistent_and_no_wheels_left(engine, base_image):
    out = run_in_image(engine, base_image, ["sh", "-c", "pip check && ls /tmp"])
    assert "No broken requirements found." in out
    assert "mfc-wheels" not in out and "mfc-ca" not in out


@pytest.mark.docker
def test_pip_trusts_the_system_store(engine, base_image):
    out = run_in_image(
        engine, base_image, ["sh", "-c", "echo $PIP_CERT; echo $REQUESTS_CA_BUNDLE; test -s $PIP_CERT"]
    )
    assert out.split() == ["/etc/ssl/certs/ca-certificates.crt"] * 2


@pytest.mark.docker
@pytest.mark.skipif(os.environ.get("MFC_SKIP_SLOW") == "1", reason="MFC_SKIP_SLOW=1")
def test_gpu_dockerfile_builds_on_a_python_base(engine, base_image):
    """Dockerfile.gpu's structure, checked on the CPU base (a CUDA base is not available here)."""
    image = engine.images.get(base_image)
    base = image.labels.get("org.opencontainers.image.base.name") or "mfc-os:bookworm"
    tag = "mfc-gpu-smoke:test"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            ".ci/image.mk",
            "image-gpu",
            f"GPU_BASE_IMAGE={base}",
            "GPU_PYTHON_VERSION=3.11",
            f"GPU_IMAGE_TAG={tag}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    labels = engine.images.get(tag).labels
    assert labels["io.mfc.flavor"] == "gpu" and labels["io.mfc.version"] == project_version()
    out = run_in_image(engine, tag, ["sh", "-c", "env | grep ^NVIDIA_ | sort; id -u; python -c 'import mfc'"])
    assert out.split() == ["NVIDIA_DRIVER_CAPABILITIES=compute,utility", "NVIDIA_VISIBLE_DEVICES=all", "1000"]
