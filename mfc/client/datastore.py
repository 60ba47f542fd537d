"""Which datastore the client reads, and the stores it reads through.

By default the root resolves like the CLI's (:class:`mfc.config.Config`: ``MFC_DATASTORE_ROOT``,
the profile, the nearest ``.mfc`` directory) each time a top-level object is made, so a notebook
follows ``cd`` and environment changes; :func:`metadata` pins a root instead.
"""

from __future__ import annotations

from typing import Any

_pinned_root: str | None = None
_cache: dict[str, Datastore] = {}


class Datastore:
    """The stores under one datastore root, made on first use and shared by client objects."""

    def __init__(self, root: str) -> None:
        from mfc.stores.blob import open_blob_store
        from mfc.stores.metadata import BlobMetadata

        self.blobs = open_blob_store(root)
        self.root = self.blobs.root
        self.metadata = BlobMetadata(self.blobs)
        self._records: dict[str, Any] = {}
        self._artifacts: dict[str, Any] = {}

    def records(self, flow: str) -> Any:
        """The :class:`~mfc.stores.records.TaskRecords` of a flow."""
        found = self._records.get(flow)
        if found is None:
            from mfc.stores.records import TaskRecords

            found = self._records[flow] = TaskRecords(self.blobs, flow)
        return found

    def artifacts(self, flow: str) -> Any:
        """The :class:`~mfc.stores.artifacts.ArtifactStore` of a flow."""
        found = self._artifacts.get(flow)
        if found is None:
            from mfc.stores.artifacts import ArtifactStore

            found = self._artifacts[flow] = ArtifactStore(self.blobs, flow)
        return found


def resolve_root() -> str:
    """The datastore root the client reads now."""
    if _pinned_root is not None:
        return _pinned_root
    from mfc.config import Config

    return Config().datastore_root


def open_datastore(root: str | None = None) -> Datastore:
    """The (cached) stores of ``root``, default :func:`resolve_root`."""
    root = root or resolve_root()
    found = _cache.get(root)
    if found is None:
        found = _cache[root] = Datastore(root)
    return found


def _describe(root: str) -> str:
    return f"s3@{root}" if root.startswith("s3://") else f"local@{root}"


def metadata(ms: str | None = None) -> str:
    """Switch the client to another datastore root and return :func:`get_metadata`'s string.

    ``ms`` is a directory, ``s3://bucket/prefix``, or ``local@<dir>`` / ``s3@<url>`` as
    :func:`get_metadata` prints it; ``None`` (or ``""``) goes back to the default resolution.
    """
    global _pinned_root
    if not ms:
        _pinned_root = None
        return get_metadata()
    if "@" in ms and ms.split("@", 1)[0] in ("local", "s3"):
        ms = ms.split("@", 1)[1]
    if "://" in ms:
        _pinned_root = ms
    else:
        import os

        root = os.path.abspath(os.path.expanduser(ms))
        # Metaflow's local@DIR names the directory holding the datastore directory.
        nested = os.path.join(root, ".mfc")
        _pinned_root = nested if os.path.isdir(nested) else root
    return get_metadata()


def get_metadata() -> str:
    """Where the client reads from: ``local@<root>`` (or ``s3@s3://...``)."""
    return _describe(resolve_root())
