"""The blob store interface and the factory that picks a backend from a datastore root."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from mfc.exceptions import MfcError

if TYPE_CHECKING:
    from mfc.stores.logs import LogWriter
    from mfc.stores.settings import S3Settings


class BlobNotFound(KeyError):
    """A key that is not in the store."""

    def __str__(self) -> str:
        return f"not found in the datastore: {self.args[0]}"


class UnsafeKey(MfcError):
    """A key that would reach outside the store's root (``..``, an absolute path)."""


class StreamCheck(Protocol):
    """What a blob store runs a checked read through (see :func:`mfc.stores.integrity.content_check`:
    the store need not know what is checked or how)."""

    def update(self, data: Any) -> None:
        """See the next stored bytes."""

    def behind(self) -> Any:
        """Check on a thread of its own, a few chunks behind the reader (for large objects)."""

    def finish(self) -> None:
        """Every byte was seen: raise if they are not what the key promises."""

    def abandon(self) -> None:
        """The read stopped early: nothing will be finished."""


class BlobStore(abc.ABC):
    """Keys are '/'-separated relative paths. Every write is atomic: a reader sees the whole
    blob or nothing."""

    root: str

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write (or overwrite) a blob."""

    def put_new(self, key: str, data: bytes) -> bool:
        """Write a blob only if the key does not exist yet; True if this call created it."""
        if self.exists(key):
            return False
        self.put_bytes(key, data)
        return True

    @abc.abstractmethod
    def get_versioned(self, key: str) -> tuple[bytes, str]:
        """A whole blob and an opaque token of its version, for :meth:`put_if`; raises BlobNotFound."""

    @abc.abstractmethod
    def put_if(self, key: str, data: bytes, version: str | None) -> bool:
        """Compare-and-swap: write the blob only if it is still at ``version`` (from
        :meth:`get_versioned`), or, with None, only if it does not exist yet. True if this call
        wrote it; False if another writer got there first (read again and retry)."""

    @abc.abstractmethod
    def put_file(self, key: str, path: str) -> None:
        """Store a local file under key; the file is consumed (moved or uploaded, then removed)."""

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read a whole blob; raises BlobNotFound."""

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of a blob from byte ``start`` (fewer at its end); raises BlobNotFound.
        Not for content-addressed objects (only a whole one can be checked)."""
        with self.open(key) as fh:
            fh.seek(start)
            return fh.read(length)

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open a blob for streaming reads; raises BlobNotFound."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True if the key is stored."""

    def size(self, key: str) -> int | None:
        """The stored size of a blob in bytes, None if it is not stored."""
        try:
            return len(self.get_bytes(key))
        except BlobNotFound:
            return None

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Names of the direct children of a '/'-terminated prefix (files and 'dirs')."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove a blob if present."""

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        """The subset of keys that are stored."""
        return {key for key in keys if self.exists(key)}

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several blobs (those present)."""
        for key in keys:
            self.delete(key)

    def put_many(self, items: dict[str, bytes]) -> None:
        """Write several blobs."""
        for key, data in items.items():
            self.put_bytes(key, data)

    def put_new_many(self, items: dict[str, bytes]) -> set[str]:
        """Write several blobs, each only if its key does not exist yet (as :meth:`put_new`);
        the keys this call created."""
        return {key for key, data in items.items() if self.put_new(key, data)}

    def put_files(self, items: dict[str, str]) -> None:
        """Move several local files (key -> path) into the store, as ``put_file`` does one."""
        for key, path in items.items():
            self.put_file(key, path)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """Read several blobs; missing keys are left out of the result."""
        found = {}
        for key in keys:
            try:
                found[key] = self.get_bytes(key)
            except BlobNotFound:
                pass
        return found

    def log_writer(self) -> LogWriter:
        """Where a process writes its tasks' logs while they run (see :mod:`mfc.stores.logs`):
        this one stages them locally and publishes them in parts while the task runs."""
        from mfc.stores.logs import StagedLogWriter

        return StagedLogWriter(self)

    def read_log(self, key: str) -> bytes:
        """A stored log, or what a running task has written of it so far (empty if nothing)."""
        from mfc.stores.logs import read_log

        return read_log(self, key)

    def local_path(self, key: str) -> str | None:
        """A filesystem path for the key when the store is a local directory, else None."""
        return None

    def staging_dir(self) -> str:
        """A local directory for temporary files that put_file can consume cheaply."""
        import tempfile

        return tempfile.gettempdir()


def open_blob_store(root: str, s3: S3Settings | None = None) -> BlobStore:
    """A blob store for a datastore root: a local directory or ``s3://bucket/prefix``. ``s3``:
    how to reach S3 (default: :func:`mfc.aws.s3_settings`, from this process's environment and
    profile; a caller holding a resolved config passes ``S3Settings.from_config(config)``)."""
    if root.startswith("s3://"):
        try:
            from mfc.stores.s3 import S3BlobStore
        except ImportError:
            raise MfcError("the S3 datastore is not available in this version of mfc") from None
        if s3 is None:
            from mfc.aws import s3_settings

            s3 = s3_settings()
        return S3BlobStore(root, settings=s3)
    if "://" in root:
        raise MfcError(f"datastore root {root!r}: use a local directory or s3://bucket/prefix")
    from mfc.stores.local import LocalBlobStore

    return LocalBlobStore(root)


def open_configured_store(config: Any) -> BlobStore:
    """The blob store of a resolved :class:`mfc.config.Config`: its datastore root, reached
    with its settings."""
    from mfc.stores.settings import S3Settings

    root = config.datastore_root
    return open_blob_store(root, S3Settings.from_config(config) if root.startswith("s3://") else None)
