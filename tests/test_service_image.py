"""``make image-service``: the metadata service's container image, built (on the base image that
``make image`` builds) and run: it answers /health, makes tokens, serves the API and the UI's
login page, on its SQLite default."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from docker_helpers import base_image_tag, require_docker, require_image
from service_support import free_port

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parent.parent


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_service_image_builds_and_serves():
    engine = require_docker()
    require_image(engine, base_image_tag())
    engine.close()
    built = subprocess.run(["make", "--no-print-directory", "image-service"], cwd=REPO, capture_output=True,
                           text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    version = base_image_tag().split(":", 1)[1]
    name, port = f"mfc-service-test-{uuid.uuid4().hex[:8]}", free_port()
    subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8642", f"mfc-service:{version}"],
                   check=True, capture_output=True, timeout=60)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f"{url}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "the service in the container did not answer"
                time.sleep(0.5)
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert _get(f"{url}/api/v1/flows")[0] == 401
        made = subprocess.run(["docker", "exec", name, "mfc", "service", "token", "create", "--read-only"],
                              capture_output=True, text=True, timeout=60)
        token = made.stdout.strip().splitlines()[-1]
        assert made.returncode == 0 and token.startswith("mfc_"), made.stderr
        status, body = _get(f"{url}/api/v1/whoami", token)
        assert status == 200 and json.loads(body)["read_only"] is True
        assert _get(f"{url}/login")[0] == 200
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
