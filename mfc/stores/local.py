"""Blob store on a local directory: temp file + rename for atomic writes; compare-and-swap
writes under an advisory lock (``fcntl.flock``) on a lock file in ``<root>/.locks/``. Reads of
content-addressed objects are checked against their content address as they go (:mod:`mfc.stores.integrity`)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from mfc.stores.blob import BlobNotFound, BlobStore, UnsafeKey
from mfc.stores.integrity import CheckedFile, content_check, read_all
from mfc.stores.logs import LocalLogWriter, LogWriter

LOCKS = ".locks"


class LocalBlobStore(BlobStore):
    """Blobs are files under ``root``; keys map to relative paths."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._inside = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self._made: set[str] = set()

    def _path(self, key: str) -> str:
        path = os.path.normpath(os.path.join(self.root, key))
        if path != self.root and not path.startswith(self._inside):
            raise UnsafeKey(f"datastore key {key!r} reaches outside the datastore root {self.root}")
        return path

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        directory = os.path.dirname(path)
        self._ensure_dir(directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise

    def put_new(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        self._ensure_dir(os.path.dirname(path))
        # Write to a temp file, then hard-link into place: link fails if the key exists,
        # so exactly one concurrent writer wins and no reader sees a partial file.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            _unlink(tmp)

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, _version(data)

    def put_if(self, key: str, data: bytes, version: str | None) -> bool:
        if version is None:
            return self.put_new(key, data)
        with self._locked(key):  # every conditional writer of this key takes the same lock
            try:
                current = self.get_bytes(key)
            except BlobNotFound:
                return False
            if _version(current) != version:
                return False
            self.put_bytes(key, data)
            return True

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        # Lock files live apart from the data and are never removed: removing one while a writer
        # holds it would let the next writer lock a new file, and two writers would both win.
        directory = os.path.join(self.root, LOCKS)
        os.makedirs(directory, exist_ok=True)
        name = hashlib.sha256(self._path(key).encode()).hexdigest()[:40]
        fd = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def put_file(self, key: str, path: str) -> None:
        target = self._path(key)
        self._ensure_dir(os.path.dirname(target))
        os.replace(path, target)

    def get_bytes(self, key: str) -> bytes:
        checked = self._checked(key)
        if checked is not None:
            with checked:
                return read_all(checked, checked.size)
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                fh.seek(start)
                return fh.read(length)
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def open(self, key: str) -> BinaryIO:
        checked = self._checked(key)
        if checked is not None:
            return io.BufferedReader(checked, buffer_size=256 * 1024)
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def _checked(self, key: str) -> CheckedFile | None:
        """A checked reader of key, None when reads of it are not checked."""
        path = self._path(key)
        check = content_check(key, path)
        if check is None:
            return None
        try:
            fh = open(path, "rb", buffering=0)
        except (FileNotFoundError, IsADirectoryError):
            raise BlobNotFound(key) from None
        return CheckedFile(fh, check)

    def size(self, key: str) -> int | None:
        try:
            return os.stat(self._path(key)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def list(self, prefix: str) -> list[str]:
        try:
            with os.scandir(self._path(prefix)) as entries:
                return [e.name for e in entries if not e.name.startswith(".tmp-")]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete(self, key: str) -> None:
        _unlink(self._path(key))

    def local_path(self, key: str) -> str:
        return self._path(key)

    def log_writer(self) -> LogWriter:
        """Logs are appended to their datastore files as the task writes them."""
        return LocalLogWriter(self)

    def staging_dir(self) -> str:
        path = os.path.join(self.root, ".staging")
        self._ensure_dir(path)
        return path


def _version(data: bytes) -> str:
    """A blob's version token: its content's hash (a rewrite with the same bytes changes nothing)."""
    return hashlib.sha256(data).hexdigest()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def local_root_problem(root: str, write: bool) -> str | None:
    """Why the directory ``root`` cannot serve as a datastore root, or None if it can: it is a
    file or lies under one, or it cannot be read, or (``write``) cannot be created or written.
    A writable root that did not exist is created, as the first write would."""
    root = os.path.abspath(root)
    existing = root
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if os.path.lexists(existing) and not os.path.isdir(existing):
        return "is a file, not a directory" if existing == root else f"lies under {existing}, which is a file"
    if os.path.isdir(root) and not os.access(root, os.R_OK | os.X_OK):
        return "cannot be read: permission denied"
    if not write:
        return None
    try:
        os.makedirs(root, exist_ok=True)
        # A real write, not os.access: that says yes to root in a read-only directory or mount.
        fd, probe = tempfile.mkstemp(dir=root, prefix=".tmp-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot be written: {exc.strerror or exc}"
    return None
