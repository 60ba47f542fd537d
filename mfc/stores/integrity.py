"""Integrity of content-addressed objects, the same on every backend.

An object's key ``<Flow>/data/xx/<digest>`` names a hash of its payload: ``b3-<64 hex>`` its
BLAKE3 (what new objects are addressed by), plain ``<64 hex>`` its sha256 (code packages, whose id
is a sha256 by contract, and objects of older runs); ``xx`` is the first two hex digits. It is stored as one
header byte (``R`` raw, ``Z`` zlib) followed by the payload. :class:`PayloadCheck` hashes the
stored bytes as they stream by and compares; both blob stores run every read of such a key
through it (S3 as the response arrives, the local store in :class:`CheckedFile`), so a damaged
object raises :class:`~mfc.exceptions.CorruptArtifact` instead of becoming a value.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import queue
import re
import threading
from typing import Any, BinaryIO, Protocol

import blake3

from mfc.exceptions import CorruptArtifact

RAW, ZLIB = b"R", b"Z"
READ_CHUNK = 1024 * 1024  # the most one piece of a background check holds
HASH_CHUNK = 16 * 1024 * 1024  # what the file hasher hashes at a time (between looks at whether to stop)
BACKGROUND_CHECK = 8 * 1024 * 1024  # objects this large are hashed on a thread of their own
B3 = "b3-"  # the prefix of a BLAKE3 address; a bare 64-hex address is a sha256
_DATA_KEY = re.compile(r"^[^/]+/data/([0-9a-f]{2})/((?:b3-)?\1[0-9a-f]{62})$")
_DIGEST = re.compile(r"(?:b3-)?[0-9a-f]{64}")


class Hasher(Protocol):
    """What :func:`hasher_for` returns: a hashlib-style incremental hash."""

    def update(self, data: Any, /) -> Any: ...

    def hexdigest(self) -> str: ...


def is_digest(value: object) -> bool:
    """Whether ``value`` is a content address: ``b3-<64 hex>`` or a sha256's 64 hex."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def digest_hex(digest: str) -> str:
    """The hex part of a content address (without its algorithm prefix)."""
    return digest.removeprefix(B3)


def hasher_for(digest: str) -> Hasher:
    """A fresh hasher of the algorithm that ``digest`` names (BLAKE3 for ``b3-``, else sha256)."""
    return blake3.blake3() if digest.startswith(B3) else hashlib.sha256()


def new_hasher() -> Hasher:
    """A hasher of the algorithm new objects are addressed by (see :func:`address_of`)."""
    return blake3.blake3()


def address_of(hasher: Hasher) -> str:
    """The content address of what a :func:`new_hasher` hasher was fed."""
    return B3 + hasher.hexdigest()


def address(payload: bytes | memoryview) -> str:
    """The content address new objects get for ``payload``."""
    return B3 + blake3.blake3(payload).hexdigest()


def data_key(flow_name: str, sha: str) -> str:
    """The blob key of a content-addressed object (an artifact, a code package) of a flow."""
    return f"{flow_name}/data/{digest_hex(sha)[:2]}/{sha}"


def data_sha(key: str) -> str | None:
    """The content address a key names when it is a content-addressed object
    (``<Flow>/data/xx/<digest>``)."""
    match = _DATA_KEY.match(key)
    return match.group(2) if match else None


def is_content_addressed(key: str) -> bool:
    """Whether ``key`` holds a content-addressed object: never rewritten with other bytes, so a
    store may remember that it exists, and checked on every read."""
    return _DATA_KEY.match(key) is not None


def content_check(key: str, location: str, error: type[CorruptArtifact] = CorruptArtifact) -> PayloadCheck | None:
    """The check a read of ``key`` must pass (None for keys that are not content-addressed): a
    blob store feeds it every stored byte and calls ``finish()`` (see :class:`StreamCheck`)."""
    sha = data_sha(key)
    return PayloadCheck(sha, location, error) if sha else None


class PayloadCheck:
    """Hashes a stored content-addressed object as it streams by (header byte ``R`` raw or ``Z``
    zlib, then the payload) and compares the hash of the decoded payload (the algorithm its address
    names, :func:`hasher_for`) with its key.

    ``behind()`` moves the hashing to a thread of its own (a few chunks behind, in order), so a
    large object is checked while the next bytes arrive and the reader consumes the last ones.
    ``error`` is the class raised on a mismatch (a :class:`CorruptArtifact`).
    """

    def __init__(self, sha: str, url: str, error: type[CorruptArtifact] = CorruptArtifact) -> None:
        self.sha = sha
        self.url = url
        self.error = error
        self.stored = 0  # stored bytes seen, header included
        self._hash = hasher_for(sha)
        self._header: bytes | None = None
        self._inflate: Any = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def behind(self, depth: int = 8) -> PayloadCheck:
        self._queue = queue.Queue(depth)
        self._thread = threading.Thread(target=self._drain, name="mfc-check", daemon=True)
        self._thread.start()
        return self

    def _drain(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._update(chunk)
                except BaseException as exc:  # noqa: BLE001 - raised by finish()
                    self._error = exc

    def update(self, data: bytes | memoryview) -> None:
        if self._queue is None:
            self._update(data)
        else:
            view = memoryview(data)
            for at in range(0, view.nbytes, READ_CHUNK):  # copies (the caller reuses its buffer),
                if self._error is not None:  # in pieces: at most depth x READ_CHUNK held here
                    return
                self._queue.put(bytes(view[at:at + READ_CHUNK]))

    def fail(self, exc: BaseException) -> None:
        """Make :meth:`finish` raise ``exc`` (a failure of whoever feeds this check)."""
        self._error = exc

    def abandon(self) -> None:
        """Stop the background thread of a check that will not be finished."""
        if self._thread is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._thread = None

    def _update(self, data: bytes | memoryview) -> None:
        import zlib

        view = memoryview(data)
        if not view.nbytes:
            return
        self.stored += view.nbytes
        if self._header is None:
            self._header = bytes(view[:1])
            view = view[1:]
            if self._header == ZLIB:
                self._inflate = zlib.decompressobj()
            elif self._header != RAW:
                raise self.corrupt(f"its first byte {self._header!r} is no known encoding")
        if self._inflate is None:
            self._hash.update(view)
            return
        pending: bytes | memoryview = view
        try:
            while pending:
                self._hash.update(self._inflate.decompress(pending, READ_CHUNK))
                pending = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise self.corrupt(f"it does not decompress ({exc})") from None
        if self._inflate.unused_data:
            raise self.corrupt("bytes follow the end of its compressed stream")

    def finish(self) -> None:
        """Raise :attr:`error` unless what went by hashes to the key's sha."""
        import zlib

        thread = self._thread
        self.abandon()
        if thread is not None:
            thread.join()
        if self._error is not None:
            raise self._error
        if self._header is None:
            raise self.corrupt("the stored object is empty")
        if self._inflate is not None:
            try:
                self._hash.update(self._inflate.flush())
            except zlib.error as exc:
                raise self.corrupt(f"it does not decompress ({exc})") from None
            if not self._inflate.eof:
                raise self.corrupt("its compressed stream is cut short")
        if self._hash.hexdigest() != digest_hex(self.sha):
            raise self.corrupt(f"its {self.stored} stored bytes hash to {self._hash.hexdigest()[:12]}")

    def corrupt(self, why: str) -> CorruptArtifact:
        return self.error(why, sha=self.sha, location=self.url)


class CheckedFile(io.RawIOBase):
    """A local content-addressed file, checked against its sha as it is read; the check ends
    (raising :class:`CorruptArtifact` on a mismatch) on the read that reaches the end.

    A large file is hashed by a thread of its own that maps the file (``mmap`` of the same
    descriptor: the reader's offset is untouched) and hashes the page cache in place, so hashing
    runs beside the reader instead of after it and no byte is copied for it (BLAKE3 releases the
    GIL; copying each byte a second time, as ``pread`` into a buffer did, cost as much as the
    hash). Both see the same bytes because a content-addressed file is never rewritten in place
    (a writer replaces it whole).
    """

    def __init__(self, fh: io.RawIOBase, check: PayloadCheck, background: int = BACKGROUND_CHECK) -> None:
        super().__init__()
        self._fh = fh
        self._check = check
        self._size = os.fstat(fh.fileno()).st_size
        self._done = False
        self._stop = False
        self._hasher: threading.Thread | None = None
        if self._size >= background:
            self._hasher = threading.Thread(target=self._hash_file, name="mfc-check", daemon=True)
            self._hasher.start()

    @property
    def size(self) -> int:
        """The stored size in bytes."""
        return self._size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        got = self._fh.readinto(view)
        if got and self._hasher is None:
            self._check.update(view[:got])
        if not got and view.nbytes:
            self._finish()
        return got or 0

    def _hash_file(self) -> None:
        try:
            with mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    for at in range(0, view.nbytes, HASH_CHUNK):
                        if self._stop:
                            return
                        self._check.update(view[at:at + HASH_CHUNK])
                finally:
                    view.release()
        except BaseException as exc:  # noqa: BLE001 - raised by _finish()
            self._check.fail(exc)

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._hasher is not None:
            self._hasher.join()
        self._check.finish()

    def close(self) -> None:
        if not self.closed:
            self._stop = True
            if self._hasher is not None:
                self._hasher.join()  # it reads through our descriptor
            self._fh.close()
        super().close()


def read_all(reader: io.RawIOBase | io.BufferedIOBase, size: int) -> bytes:
    """Every byte of a stream of known size, read in place, then the read that ends it (which
    finishes a checking reader's check)."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        got = reader.readinto(view[done:])
        if not got:
            break
        done += got
    view.release()
    if done < size:
        del buffer[done:]
    else:
        while reader.read(READ_CHUNK):  # the file grew since fstat: those bytes count too
            pass
    return bytes(buffer)


def drain(reader: BinaryIO) -> None:
    """Read a stream to its end, so a checking reader finishes its check."""
    while reader.read(READ_CHUNK):
        pass


__all__ = ["PayloadCheck", "CheckedFile", "data_key", "data_sha", "is_content_addressed", "content_check", "read_all", "drain", "RAW", "ZLIB", "BACKGROUND_CHECK",
           "B3", "Hasher", "is_digest", "digest_hex", "hasher_for", "new_hasher", "address_of", "address"]
