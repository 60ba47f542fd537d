"""Task specs too large for a command line (a join over thousands of foreach tasks), stored
beside the attempt they start as ``<attempt>.spec.json`` and referred to as ``@<location>``."""

from __future__ import annotations

from mfc.stores.blob import BlobStore, open_blob_store
from mfc.stores.records import TaskRecords, location


def store_spec(blobs: BlobStore, flow: str, run_id: str, step: str, task_id: str, attempt: int, text: str) -> str:
    """Store an attempt's spec; returns the ``--spec`` argument that refers to it (``@`` and its
    path on a local datastore, else its URL)."""
    key = TaskRecords(blobs, flow).key(run_id, step, task_id, attempt, "spec.json")
    blobs.put_bytes(key, text.encode())
    return f"@{location(blobs, key)}"


def read_spec(ref: str) -> str:
    """The spec a ``--spec @ref`` names: a local file, or a datastore URL."""
    if "://" not in ref:
        with open(ref) as fh:
            return fh.read()
    root, _, key = ref.rpartition("/")
    return open_blob_store(root).get_bytes(key).decode()


__all__ = ["store_spec", "read_spec"]
