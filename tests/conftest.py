"""Shared fixtures: a fresh datastore root per test."""

from __future__ import annotations

import pytest


@pytest.fixture
def root(tmp_path):
    """A datastore root directory for one test (``MFC_DATASTORE_ROOT`` of its subprocesses)."""
    path = tmp_path / "ds"
    path.mkdir()
    return path
