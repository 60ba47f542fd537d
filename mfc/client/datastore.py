"""Which datastore the client reads, and the stores it reads through.

By default the root resolves like the CLI's (:class:`mfc.config.Config`: ``MFC_DATASTORE_ROOT``,
the profile, the nearest ``.mfc`` directory) each time a top-level object is made, so a notebook
follows ``cd`` and environment changes; :func:`metadata` pins a root instead. Runs, steps and
tasks are listed and read through the metadata provider the ``metadata`` setting names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mfc.config import Config
    from mfc.stores.provider import MetadataProvider
    from mfc.stores.records import TaskRecords

_pinned_root: str | None = None
_cache: dict[tuple[str, str], Datastore] = {}


class Datastore:
    """The stores under one datastore root, made on first use and shared by client objects.

    ``metadata`` names the metadata provider, or is the config whose ``metadata`` setting does
    (default: the environment's, :class:`mfc.config.Config`); a provider object may be given
    instead. Through a config, a Step Functions run's status is asked of its execution in the
    account that config reaches (:func:`mfc.stores.provider.open_metadata`)."""

    def __init__(self, root: str, metadata: str | Config | MetadataProvider | None = None) -> None:
        from mfc.config import Config
        from mfc.stores.blob import open_blob_store
        from mfc.stores.provider import MetadataProvider, open_metadata
        from mfc.stores.settings import S3Settings

        # Given a config, S3 is reached as it says (endpoint, region), not as the environment does.
        s3 = S3Settings.from_config(metadata) if isinstance(metadata, Config) and root.startswith("s3://") else None
        self.blobs = open_blob_store(root, s3)
        self.root = self.blobs.root
        self.metadata: MetadataProvider = (metadata if isinstance(metadata, MetadataProvider)
                                           else open_metadata(self.blobs, metadata or Config()))
        self._artifacts: dict[str, Any] = {}

    def records(self, flow: str) -> TaskRecords:
        """The :class:`~mfc.stores.records.TaskRecords` of a flow, from the metadata provider."""
        return self.metadata.records(flow)

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
    """The (cached) stores of ``root``, default :func:`resolve_root`, read through the metadata
    provider the ``metadata`` setting names."""
    from mfc.config import Config

    config = Config()  # one resolution for both the root and the provider
    root = root or _pinned_root or config.datastore_root
    kind: str = config["metadata"]
    found = _cache.get((root, kind))
    if found is None:
        found = _cache[(root, kind)] = Datastore(root, config)
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
