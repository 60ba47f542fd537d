"""Shared fixtures: a fresh datastore root per test, and a moto S3 server per test module."""

from __future__ import annotations

import pytest
from moto_server import MotoServer


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
