"""Staging files that are cleaned up when their owner dies.

Every temporary file mfc writes in a staging directory (an artifact's spool, a task's raw log,
a sealed log waiting for its upload) is created here, named ``.tmp-*`` and held under an
exclusive ``flock`` for as long as its owner has it open. The kernel drops the lock when the
owner exits, however it ends, so a sweep can tell a file in use from one left by a killed
process without knowing pids or hosts (a lock holds across containers on one kernel, and on
NFS). A file is only swept once it is older than ``MIN_AGE`` seconds, which covers the moment
between its creation and its lock.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

if sys.platform == "win32":  # pragma: no cover - no flock on this platform: nothing is ever swept
    fcntl = None
else:
    import fcntl

PREFIX = ".tmp-"
MIN_AGE = 60.0


_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
_fallocate: Any = False  # False: not looked up yet; None: not available here


def free_prefix(fd: int, length: int) -> bool:
    """Give the disk blocks of a file's first ``length`` bytes back (Linux ``fallocate`` punching
    a hole; size and offsets unchanged, so a writer appending to it is not disturbed). Lets a
    raw log that has been copied elsewhere stop taking disk space twice. False where unsupported."""
    global _fallocate
    if _fallocate is False:
        _fallocate = None
        if sys.platform.startswith("linux"):
            import ctypes

            function = getattr(ctypes.CDLL(None, use_errno=True), "fallocate", None)
            if function is not None:
                function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
                _fallocate = function
    if _fallocate is None or length <= 0:
        return False
    return _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, 0, length) == 0


def create(directory: str, label: str = "", mode: Literal["wb", "rb"] = "wb") -> tuple[BinaryIO, str]:
    """A new staging file in ``directory``, open and locked; closing it releases the lock."""
    fd, path = tempfile.mkstemp(dir=directory, prefix=PREFIX + label)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return os.fdopen(fd, mode), path


@dataclass(frozen=True)
class Swept:
    """A staging file a sweep removed (or would remove)."""

    path: str
    size: int


def sweep(directory: str, min_age: float = MIN_AGE, dry_run: bool = False) -> list[Swept]:
    """Remove the staging files in ``directory`` that no live process holds; returns them."""
    if fcntl is None:
        return []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    now = time.time()
    removed = []
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False) or now - info.st_mtime < min_age:
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # its owner is alive
        try:
            if not dry_run:
                os.unlink(entry.path)
            removed.append(Swept(entry.path, info.st_size))
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def describe(swept: list[Swept], directory: str, dry_run: bool = False) -> str:
    """One line saying what a sweep removed."""
    if not swept:
        return f"no leftover staging files in {directory}"
    total = sum(s.size for s in swept)
    verb = "would remove" if dry_run else "removed"
    files = "file" if len(swept) == 1 else "files"
    return f"{verb} {len(swept)} leftover staging {files} ({_size(total)}) from {directory}"


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover
