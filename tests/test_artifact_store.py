"""The artifact store over a local blob store: large values spool to a staging file, and that
file never outlives the save, whether the upload succeeds, is skipped or fails."""

from __future__ import annotations

import os

import pytest

from mfc.stores.artifacts import SPOOL_LIMIT, ArtifactStore
from mfc.stores.local import LocalBlobStore


class FailingUploads(LocalBlobStore):
    def put_file(self, key: str, path: str) -> None:
        raise OSError("the network went away")


def _staged(blobs: LocalBlobStore) -> list[str]:
    staging = blobs.staging_dir()
    return os.listdir(staging) if os.path.isdir(staging) else []


def test_large_values_are_stored_once_and_leave_no_spool(tmp_path):
    blobs = LocalBlobStore(str(tmp_path / "ds"))
    store = ArtifactStore(blobs, "SpoolFlow")
    value = os.urandom(SPOOL_LIMIT + 1024)
    first = store.save(value, "big", "start")
    second = store.save(value, "big", "start")  # already stored: the spool is discarded
    assert first.sha == second.sha and store.load(first.sha) == value
    assert _staged(blobs) == []


def test_a_failed_upload_leaves_no_spool(tmp_path):
    blobs = FailingUploads(str(tmp_path / "ds"))
    store = ArtifactStore(blobs, "SpoolFlow")
    with pytest.raises(OSError, match="the network went away"):
        store.save(os.urandom(SPOOL_LIMIT + 1024), "big", "start")
    assert _staged(blobs) == []
