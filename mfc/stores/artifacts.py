"""Content-addressed artifact store.

An artifact's key is the sha256 of its serialized (cloudpickle) bytes, so equal values are
stored once and cloning a task copies nothing. Small blobs are compressed when that pays;
large ones are streamed to a staging file while they are hashed, never held twice in memory.
Stored form: one header byte (``R`` raw, ``Z`` zlib) followed by the payload.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from mfc.exceptions import MfcError
from mfc.stores import staging
from mfc.stores.blob import BlobNotFound, BlobStore

RAW, ZLIB = b"R", b"Z"
SPOOL_LIMIT = 4 * 1024 * 1024  # beyond this, serialize to a staging file instead of memory
MIN_COMPRESS = 512  # below this, compression never pays for its header and CPU
PICKLE_PROTOCOL = 5


class ArtifactError(MfcError):
    """An artifact could not be stored or loaded."""


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact lives and what it is."""

    sha: str
    size: int
    type: str

    def to_json(self) -> list:
        return [self.sha, self.size, self.type]

    @classmethod
    def from_json(cls, data: list) -> ArtifactRef:
        return cls(data[0], data[1], data[2])


def data_key(flow_name: str, sha: str) -> str:
    """The blob key of a content-addressed object."""
    return f"{flow_name}/data/{sha[:2]}/{sha}"


class _HashingSpool:
    """A write-only file that hashes what it receives, keeping it in memory up to a limit and
    spilling to a staging file beyond it."""

    def __init__(self, staging_dir: str, limit: int = SPOOL_LIMIT) -> None:
        self.sha = hashlib.sha256()
        self.buffer: bytearray | None = bytearray()
        self.file: BinaryIO | None = None
        self.path: str | None = None
        self.size = 0
        self._staging_dir = staging_dir
        self._limit = limit

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += view.nbytes
        if self.file is None:
            assert self.buffer is not None
            if len(self.buffer) + view.nbytes <= self._limit:
                self.buffer += view
                return view.nbytes
            self.file, self.path = staging.create(self._staging_dir, "spool-")
            self.file.write(RAW)
            self.file.write(self.buffer)
            self.buffer = None
        self.file.write(view)
        return view.nbytes

    def discard(self) -> None:
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        if self.file is not None:
            self.file.close()


class _HashOnly:
    """A write-only file that only hashes what it receives."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        return view.nbytes


def serialize(value: Any) -> bytes:
    """cloudpickle a value into bytes (used for small values such as parameters)."""
    import cloudpickle

    return cloudpickle.dumps(value, protocol=PICKLE_PROTOCOL)


def type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


class ArtifactStore:
    """Save and load artifacts of one flow by content hash."""

    def __init__(self, blobs: BlobStore, flow_name: str) -> None:
        self.blobs = blobs
        self.flow_name = flow_name

    def key(self, sha: str) -> str:
        return data_key(self.flow_name, sha)

    def save(self, value: Any, name: str = "", step: str = "") -> ArtifactRef:
        """Serialize and store one value; returns its reference."""
        import cloudpickle

        spool = _HashingSpool(self.blobs.staging_dir())
        try:
            cloudpickle.dump(value, spool, protocol=PICKLE_PROTOCOL)
        except Exception as exc:
            spool.discard()
            where = f"step {step}: " if step else ""
            raise ArtifactError(f"{where}artifact {name!r} ({type_name(value)}) cannot be pickled: {exc}") from None
        sha = spool.sha.hexdigest()
        ref = ArtifactRef(sha, spool.size, type_name(value))
        key = self.key(sha)
        if spool.file is not None:
            spool.file.flush()  # kept open until it is stored: its lock tells a sweep it is in use
            try:
                if not self.blobs.exists(key):
                    assert spool.path is not None
                    self.blobs.put_file(key, spool.path)  # moves the spool into the store
            finally:
                spool.discard()  # a failed upload leaves no spool file behind
            return ref
        assert spool.buffer is not None
        self._put_small(key, bytes(spool.buffer))
        return ref

    def digest(self, value: Any) -> str | None:
        """The key ``value`` would be stored under, computed without writing anything
        (None if it cannot be pickled)."""
        import cloudpickle

        sink = _HashOnly()
        try:
            cloudpickle.dump(value, sink, protocol=PICKLE_PROTOCOL)
        except Exception:  # noqa: BLE001 - save() reports it properly
            return None
        return sink.sha.hexdigest()

    def save_bytes(self, payload: bytes) -> str:
        """Store raw bytes (a code package, a file) by their sha256; returns the sha."""
        sha = hashlib.sha256(payload).hexdigest()
        self._put_small(self.key(sha), payload)
        return sha

    def _put_small(self, key: str, payload: bytes) -> None:
        if self.blobs.exists(key):
            return
        stored = RAW + payload
        if len(payload) >= MIN_COMPRESS:
            packed = zlib.compress(payload, 1)
            if len(packed) < 0.8 * len(payload):
                stored = ZLIB + packed
        self.blobs.put_new(key, stored)

    def load_bytes(self, sha: str) -> bytes:
        """The raw payload stored under sha."""
        data = self._get(sha)
        return _decode(data, sha)

    def load(self, sha: str) -> Any:
        """Load and unpickle an artifact."""
        try:
            fh = self.blobs.open(self.key(sha))
        except BlobNotFound:
            raise ArtifactError(f"artifact data {sha[:12]} is missing from the datastore at {self.blobs.root}") from None
        with fh:
            header = fh.read(1)
            if header == RAW:
                return pickle.load(fh)
            return pickle.loads(_decode(header + fh.read(), sha))

    def _get(self, sha: str) -> bytes:
        try:
            return self.blobs.get_bytes(self.key(sha))
        except BlobNotFound:
            raise ArtifactError(f"data {sha[:12]} is missing from the datastore at {self.blobs.root}") from None

    def exists(self, sha: str) -> bool:
        return self.blobs.exists(self.key(sha))


def _decode(stored: bytes, sha: str) -> bytes:
    header, body = stored[:1], stored[1:]
    if header == RAW:
        return body
    if header == ZLIB:
        return zlib.decompress(body)
    raise ArtifactError(f"data {sha[:12]} has an unknown encoding")


__all__ = ["ArtifactStore", "ArtifactRef", "ArtifactError", "data_key", "serialize", "type_name"]
