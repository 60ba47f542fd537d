"""Content-addressed artifact store.

An artifact's key is the BLAKE3 of its serialized (cloudpickle) bytes (``b3-<hex>``; older runs'
artifacts are addressed by their sha256 and still read, see :mod:`mfc.stores.integrity`), so equal values are
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

from mfc.exceptions import CorruptArtifact, MfcError, MissingData
from mfc.stores import staging
from mfc.stores.blob import BlobNotFound, BlobStore
from mfc.stores.integrity import B3, RAW, ZLIB, Hasher, address, address_of, data_key, drain, new_hasher

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


class _HashingSpool:
    """A write-only file that hashes what it receives, keeping it in memory up to a limit and
    spilling to a staging file beyond it."""

    def __init__(self, staging_dir: str, limit: int = SPOOL_LIMIT) -> None:
        self.sha = new_hasher()
        self.buffer: bytearray | None = bytearray()
        self.file: BinaryIO | None = None
        self.path: str | None = None
        self.size = 0
        self._staging_dir = staging_dir
        self._limit = limit

    def write(self, data: Any) -> int:
        view = _octets(data)
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

    def __init__(self, hasher: Hasher) -> None:
        self.sha = hasher

    def write(self, data: Any) -> int:
        view = _octets(data)
        self.sha.update(view)
        return view.nbytes


def _octets(data: Any) -> memoryview:
    """``data`` as a flat view of bytes: the pickler hands over typed buffers (a float64 array's
    memory), which BLAKE3, unlike hashlib, takes only as bytes."""
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


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
        sha = address_of(spool.sha)
        ref = ArtifactRef(sha, spool.size, type_name(value))
        key = self.key(sha)
        if spool.file is not None:
            spool.file.flush()  # kept open until it is stored: its lock tells a sweep it is in use
            try:
                if not self.blobs.exists(key) or not self._reusable(key, spool.size):
                    assert spool.path is not None
                    self.blobs.put_file(key, spool.path)  # moves the spool into the store
            finally:
                spool.discard()  # a failed upload leaves no spool file behind
            return ref
        assert spool.buffer is not None
        self._put_small(key, bytes(spool.buffer))
        return ref

    def digest(self, value: Any, like: str | None = None) -> str | None:
        """The key ``value`` would be stored under, computed without writing anything (None if it
        cannot be pickled); with ``like`` (an address), in that address's algorithm instead, so a
        value read from an older run's sha256-addressed object compares equal to its address."""
        import cloudpickle

        old = like is not None and not like.startswith(B3)
        sink = _HashOnly(hashlib.sha256() if old else new_hasher())
        try:
            cloudpickle.dump(value, sink, protocol=PICKLE_PROTOCOL)
        except Exception:  # noqa: BLE001 - save() reports it properly
            return None
        return sink.sha.hexdigest() if old else address_of(sink.sha)

    def save_bytes(self, payload: bytes, sha256: bool = False) -> str:
        """Store raw bytes (a file) by their content address (BLAKE3); returns the address.
        ``sha256=True`` addresses them by their sha256 instead (a code package, whose id is its
        sha256 by contract)."""
        sha = hashlib.sha256(payload).hexdigest() if sha256 else address(payload)
        self._put_small(self.key(sha), payload)
        return sha

    def _put_small(self, key: str, payload: bytes) -> None:
        exists = self.blobs.exists(key)
        if exists and self._reusable(key):
            return
        stored = RAW + payload
        if len(payload) >= MIN_COMPRESS:
            packed = zlib.compress(payload, 1)
            if len(packed) < 0.8 * len(payload):
                stored = ZLIB + packed
        if exists:
            self.blobs.put_bytes(key, stored)  # replaces a damaged copy, atomically
        else:
            self.blobs.put_new(key, stored)

    def _reusable(self, key: str, raw_size: int | None = None) -> bool:
        """Whether a stored copy of what is being saved may stand in for it. On a local datastore,
        where reading it back is cheap, a small object is read (and so checked) and a large one's
        size compared: a run that makes a value whose stored copy was damaged stores it again
        instead of pointing at the damage. On S3 existence is trusted (reads still check)."""
        if self.blobs.local_path(key) is None:
            return True
        if raw_size is not None:  # a large object is stored raw: one header byte, then the payload
            return self.blobs.size(key) == raw_size + 1
        try:
            self.blobs.get_bytes(key)
        except (CorruptArtifact, BlobNotFound):
            return False
        return True

    def load_bytes(self, sha: str) -> bytes:
        """The raw payload stored under sha (checked against it as it is read)."""
        data = self._get(sha)
        return _decode(data, sha, self.location(sha))

    def load(self, sha: str) -> Any:
        """Load and unpickle an artifact. Its bytes are checked against ``sha`` as they are read:
        damage raises :class:`CorruptArtifact` (:class:`MissingData` if the object is gone),
        never a value and never the unpickler's own error."""
        key = self.key(sha)
        try:
            fh = self.blobs.open(key)
        except BlobNotFound:
            raise MissingData("", sha=sha, location=self.location(sha)) from None
        with fh:
            try:
                header = fh.read(1)
                if header == RAW:
                    value = pickle.load(fh)
                    drain(fh)  # the read that reaches the end finishes the check
                    return value
                payload = _decode(header + fh.read(), sha, self.location(sha))
            except CorruptArtifact:
                raise
            except Exception as exc:
                drain(fh)  # a check that fails names the real cause: the stored bytes
                raise self._unloadable(sha, exc) from None
        try:
            return pickle.loads(payload)
        except Exception as exc:
            raise self._unloadable(sha, exc) from None

    def load_payloads(self, shas: list[str]) -> dict[str, bytes]:
        """The raw payloads of several artifacts in one batched read, each checked against its
        sha as it is read; missing ones are left out (damage raises, as :meth:`load` does)."""
        keys = {self.key(sha): sha for sha in shas}
        found = self.blobs.get_many(list(keys))
        return {keys[key]: _decode(data, keys[key], self.location(keys[key])) for key, data in found.items()}

    def unpickle(self, sha: str, payload: bytes) -> Any:
        """The value of a payload from :meth:`load_payloads` (its errors as :meth:`load`'s)."""
        try:
            return pickle.loads(payload)
        except Exception as exc:
            raise self._unloadable(sha, exc) from None

    def _unloadable(self, sha: str, exc: Exception) -> Exception:
        """What to raise for intact bytes that do not unpickle: corruption when the pickle stream
        itself is broken (the bytes were written wrong), else what the value needs (a module)."""
        if isinstance(exc, (pickle.UnpicklingError, EOFError, zlib.error)):
            return CorruptArtifact(f"it does not unpickle ({type(exc).__name__}: {exc})", sha=sha,
                                   location=self.location(sha))
        return ArtifactError(f"data {sha[:12]} cannot be unpickled here: {type(exc).__name__}: {exc}")

    def location(self, sha: str) -> str:
        """Where the object is stored: its path on a local datastore, else its URL."""
        key = self.key(sha)
        return self.blobs.local_path(key) or f"{self.blobs.root}/{key}"

    def _get(self, sha: str) -> bytes:
        try:
            return self.blobs.get_bytes(self.key(sha))
        except BlobNotFound:
            raise MissingData("", sha=sha, location=self.location(sha)) from None

    def exists(self, sha: str) -> bool:
        return self.blobs.exists(self.key(sha))


def _decode(stored: bytes, sha: str, location: str) -> bytes:
    header, body = stored[:1], stored[1:]
    if header == RAW:
        return body
    if header == ZLIB:
        try:
            return zlib.decompress(body)
        except zlib.error as exc:
            raise CorruptArtifact(f"it does not decompress ({exc})", sha=sha, location=location) from None
    raise CorruptArtifact("the stored object is empty" if not header else f"its first byte {header!r} is no known encoding",
                          sha=sha, location=location)


__all__ = ["ArtifactStore", "ArtifactRef", "ArtifactError", "CorruptArtifact", "MissingData", "data_key", "serialize",
           "type_name", "RAW", "ZLIB"]
