"""Counting what a task reads from its datastore, for the benchmarks: with ``MFC_COUNT_READS``
set to a file, each task adds one line ``<bytes> <reads> <pathspec>`` to it when it ends."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, BinaryIO

from mfc.stores.blob import BlobStore

ENV = "MFC_COUNT_READS"


class CountingBlobStore:
    """A blob store that counts the bytes and the reads that go through it (and does nothing
    else: every other call goes to the store it wraps)."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner
        self.bytes_read = 0
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def count(self, size: int, reads: int = 1) -> None:
        self.bytes_read += size
        self.reads += reads

    def get_bytes(self, key: str) -> bytes:
        data = self._inner.get_bytes(key)
        self.count(len(data))
        return data

    def get_range(self, key: str, start: int, length: int) -> bytes:
        data = self._inner.get_range(key, start, length)
        self.count(len(data))
        return data

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        data, version = self._inner.get_versioned(key)
        self.count(len(data))
        return data, version

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        found = self._inner.get_many(keys)
        self.count(sum(len(d) for d in found.values()), len(keys))
        return found

    def open(self, key: str) -> BinaryIO:
        self.count(0)
        # A proxy: the rest of BinaryIO goes through __getattr__, which mypy does not count.
        return _CountingReader(self._inner.open(key), self)  # type: ignore[return-value]


class _CountingReader:
    def __init__(self, inner: BinaryIO, store: CountingBlobStore) -> None:
        self._inner = inner
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _CountingReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.close()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._store.count(len(data), 0)
        return data

    def read1(self, size: int = -1) -> bytes:
        data = self._inner.read1(size)  # type: ignore[attr-defined]  # every store's reader has it; BinaryIO omits it
        self._store.count(len(data), 0)
        return data

    def readinto(self, buffer: Any) -> int:
        got = self._inner.readinto(buffer)  # type: ignore[attr-defined]  # as read1
        self._store.count(got or 0, 0)
        return got

    def readline(self, size: int = -1) -> bytes:
        data = self._inner.readline(size)
        self._store.count(len(data), 0)
        return data


def counted(blobs: BlobStore) -> BlobStore:
    """``blobs`` itself, or a counting wrapper when ``MFC_COUNT_READS`` is set."""
    # A proxy: the rest of BlobStore goes through __getattr__, which mypy does not count.
    return CountingBlobStore(blobs) if os.environ.get(ENV) else blobs  # type: ignore[return-value]


def report(blobs: BlobStore, pathspec: str) -> None:
    """Add this task's line to the ``MFC_COUNT_READS`` file (one small O_APPEND write)."""
    path = os.environ.get(ENV)
    if not path or not isinstance(blobs, CountingBlobStore):
        return
    line = f"{blobs.bytes_read} {blobs.reads} {pathspec}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
