"""Helpers for tests that need a Docker engine or the mfc images.

Without an engine such tests are skipped, except where one is promised: with ``CI=true``
or ``MFC_REQUIRE_DOCKER=1`` they fail instead, so CI cannot go green by skipping them.

    from docker_helpers import require_docker, require_image, base_image_tag

    def test_something():
        client = require_docker()
        image = require_image(client, base_image_tag())
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from mfc.builder.engine import docker_available, docker_client

if sys.version_info >= (3, 11):
    pass
else:
    pass

REPO_ROOT = Path(__file__).resolve().parents[1]


def docker_required() -> bool:
    """Whether a missing engine or image is a failure here (``CI=true`` / ``MFC_REQUIRE_DOCKER=1``)."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("MFC_REQUIRE_DOCKER") == "1"


def _skip_or_fail(reason: str) -> None:
    if docker_required():
        pytest.fail(f"{reason} [CI=true or MFC_REQUIRE_DOCKER=1: Docker is required here]", pytrace=False)
    pytest.skip(reason)


def require_docker() -> Any:
    """A docker SDK client for the engine, else skip (or fail, see :func:`docker_required`)."""
    ok, reason = docker_available()
    if not ok:
        _skip_or_fail(reason)
    return docker_client()


def project_version() -> str:
    """mfc's version as mfc/version.py states it (what pyproject.toml and ``make image`` read)."""
    text = (REPO_ROOT / "mfc" / "version.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def base_image_tag() -> str:
    """The CPU image ``make image`` builds: ``mfc-base:<version>``; ``MFC_TEST_BASE_IMAGE`` names
    another (one built from a branch: ``make -f .ci/image.mk image IMAGE_TAG=mfc-base:mine``)."""
    return os.environ.get("MFC_TEST_BASE_IMAGE") or f"mfc-base:{project_version()}"


def require_image(client: Any, tag: str) -> Any:
    """The image ``tag`` on the engine, else skip (or fail) with how to build it."""
    import docker.errors

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        _skip_or_fail(f"image {tag} is not built: run `make image`")


def run_in_image(client: Any, image: str, command: list[str], **kwargs: Any) -> str:
    """Run ``command`` in a throwaway container of ``image``; its stdout, or AssertionError with stderr."""
    import docker.errors

    try:
        out = client.containers.run(image, command, remove=True, stdout=True, stderr=False, **kwargs)
    except docker.errors.ContainerError as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise AssertionError(f"{command} exited {exc.exit_status} in {image}:\n{stderr}") from None
    return out.decode()
