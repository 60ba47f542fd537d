"""Blob store on a local directory: temp file + rename for atomic writes. Reads of
content-addressed objects are checked against their sha256 as they go (:mod:`mfc.stores.integrity`)."""

from __future__ import annotations

import io
import os
import tempfile
from typing import BinaryIO

from mfc.stores.blob import BlobNotFound, BlobStore
from mfc.stores.integrity import CheckedFile, data_sha, read_all


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
        if data_sha(key):
            with self._checked(key) as checked:
                return read_all(checked, checked.size)  # type: ignore[arg-type]
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def open(self, key: str) -> BinaryIO:
        if data_sha(key):
            return io.BufferedReader(self._checked(key), buffer_size=256 * 1024)  # type: ignore[return-value]
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def _checked(self, key: str) -> CheckedFile:
        path = self._path(key)
        try:
            fh = open(path, "rb", buffering=0)
        except (FileNotFoundError, IsADirectoryError):
            raise BlobNotFound(key) from None
        return CheckedFile(fh, data_sha(key) or "", path)

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

    def staging_dir(self) -> str:
        path = os.path.join(self.root, ".staging")
        self._ensure_dir(path)
        return path


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
