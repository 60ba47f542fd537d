"""Blob store on a local directory: temp file + rename for atomic writes."""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO

from mfc.stores.blob import BlobNotFound, BlobStore


class LocalBlobStore(BlobStore):
    """Blobs are files under ``root``; keys map to relative paths."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._made: set[str] = set()

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

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

    def put_file(self, key: str, path: str) -> None:
        target = self._path(key)
        self._ensure_dir(os.path.dirname(target))
        os.replace(path, target)

    def get_bytes(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None

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

    def staging_dir(self) -> str:
        path = os.path.join(self.root, ".staging")
        self._ensure_dir(path)
        return path


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
