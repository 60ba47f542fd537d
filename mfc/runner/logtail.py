"""Follow the logs of running tasks in bounded chunks, and seal each one when its task ends.

A task writes its stdout and stderr into raw staging files that only the orchestrator reads.
The tailer copies what arrives into the task's stored log (a :class:`~mfc.stores.logs.LogSink`
of the datastore, which makes it readable while the task runs on every backend) and hands
complete lines to a callback for display. Memory stays bounded whatever a task prints: files are read ``CHUNK`` bytes at a time,
and a line longer than ``MAX_LINE`` is split, each piece but the last marked with ``SPLIT_MARK``
in the stored log and on display. When the task ends the raw file is read up to its size at
that moment and removed: whatever a process the task left behind (a ``setsid`` daemon) writes
afterwards goes nowhere, so a finished task's stored log never changes. While a task runs, the
disk blocks of raw output already copied are given back (see :func:`mfc.stores.staging.free_prefix`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from mfc.stores import staging
from mfc.stores.logs import LogSink

LineCallback = Callable[[str, str, str], None]  # (prefix, stream, line)

CHUNK = 1024 * 1024
MAX_LINE = 64 * 1024
POLL_BUDGET = 8 * CHUNK  # per file per poll, so one chatty task cannot stall the scheduler
SPLIT_MARK = b" ... [line split: longer than 64 KiB]"
FREE_EVERY = 16 * CHUNK  # copied raw bytes are given back to the disk in steps this large


class LineSplitter:
    """Cuts a byte stream into lines of at most ``max_line`` bytes (newline not counted),
    holding at most ``max_line`` bytes of an unfinished line."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.partial = b""
        self.splits = 0  # how many pieces were cut so far

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        """The lines completed by ``data``, as (bytes without newline, was_split)."""
        out: list[tuple[bytes, bool]] = []
        start = 0
        while True:
            room = self.max_line - len(self.partial)
            newline = data.find(b"\n", start, start + room + 1)
            if newline >= 0:
                out.append((self.partial + data[start:newline], False))
                self.partial = b""
                start = newline + 1
                continue
            if len(data) - start <= room:
                self.partial += data[start:]
                return out
            piece = self.partial + data[start:start + room]
            cut = _utf8_boundary(piece)
            out.append((piece[:cut], True))
            self.splits += 1
            self.partial = piece[cut:]
            start += room

    def flush(self) -> bytes:
        """What is left of an unfinished last line."""
        rest, self.partial = self.partial, b""
        return rest


def _utf8_boundary(piece: bytes) -> int:
    """Where to cut ``piece`` so that no multi-byte UTF-8 character is split (its length if
    it does not end inside one)."""
    for back in range(1, min(4, len(piece)) + 1):
        byte = piece[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the start of the last character
            width = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return len(piece) - back if width > back and back < len(piece) else len(piece)
    return len(piece)


@dataclass
class _Followed:
    prefix: str
    stream: str
    source: BinaryIO
    sink: LogSink
    splitter: LineSplitter = field(default_factory=LineSplitter)
    offset: int = 0
    freed: int = 0  # the raw file's first bytes whose disk space was given back


class LogTailer:
    """Follows raw log files and keeps their stored copies up to date."""

    def __init__(self, on_line: LineCallback, chunk: int = CHUNK, budget: int = POLL_BUDGET) -> None:
        self.on_line = on_line
        self.chunk = chunk
        self.budget = budget
        self._files: dict[str, _Followed] = {}  # raw path -> what follows it
        self._opened: dict[str, BinaryIO] = {}  # raw files made by open(), not yet added

    def open(self, directory: str, label: str) -> str:
        """Create a raw log file for a task to write (locked, in ``directory``); returns its path."""
        source, path = staging.create(directory, label, "rb")
        self._opened[path] = source
        return path

    def add(self, prefix: str, stream: str, raw_path: str, sink: LogSink) -> None:
        """Follow ``raw_path`` (made by :meth:`open`) into the stored log ``sink``."""
        source = self._opened.pop(raw_path)
        self._files[raw_path] = _Followed(prefix, stream, source, sink)

    def poll(self, paths: list[str] | None = None) -> None:
        """Copy and show what the followed files gained since the last poll (bounded per file)."""
        for path in list(paths if paths is not None else self._files):
            followed = self._files.get(path)
            if followed is not None:
                self._read(followed, self.budget)

    def _read(self, followed: _Followed, budget: int, end: int | None = None) -> None:
        """Read up to ``budget`` new bytes (and not past ``end``)."""
        fd = followed.source.fileno()
        if end is None:
            end = os.fstat(fd).st_size
        budget = min(budget, end - followed.offset)
        while budget > 0:
            data = os.pread(fd, min(self.chunk, budget), followed.offset)
            if not data:
                return
            budget -= len(data)
            followed.offset += len(data)
            if followed.offset - followed.freed >= FREE_EVERY:
                staging.free_prefix(fd, followed.offset)
                followed.freed = followed.offset
            splitter = followed.splitter
            before, splits = splitter.partial, splitter.splits
            lines = splitter.feed(data)
            if splitter.splits == splits:  # the usual case: store the completed lines as they came
                stored = before + data[:len(data) - len(splitter.partial)] if lines else b""
            else:
                stored = b"".join((line + SPLIT_MARK if split else line) + b"\n" for line, split in lines)
            for line, split in lines:
                text = line + SPLIT_MARK if split else line
                self.on_line(followed.prefix, followed.stream, text.decode("utf-8", "replace"))
            self._store(followed, stored)

    def _store(self, followed: _Followed, data: bytes) -> None:
        if data:
            followed.sink.write(data)

    def finish(self, raw_path: str) -> LogSink | None:
        """Read the rest of a finished task's file (up to its size now), including a last line
        without a newline, remove it and stop following it; returns its stored log, complete, for
        the caller to seal (``LogWriter.seal``)."""
        followed = self._files.pop(raw_path, None)
        if followed is None:
            return None
        try:
            end = os.fstat(followed.source.fileno()).st_size
            self._read(followed, end, end)
            rest = followed.splitter.flush()
            if rest:
                self.on_line(followed.prefix, followed.stream, rest.decode("utf-8", "replace"))
                self._store(followed, rest)
        finally:
            _unlink(raw_path)
            followed.source.close()
        return followed.sink

    def discard(self, raw_path: str) -> None:
        """Remove a raw file made by :meth:`open` that no task got."""
        source = self._opened.pop(raw_path, None)
        if source is not None:
            source.close()
        _unlink(raw_path)

    def close(self) -> list[LogSink]:
        """Stop following everything (the run is over); raw files are removed. Returns the
        stored logs it finished, for the caller to seal."""
        finished = [sink for path in list(self._files) if (sink := self.finish(path)) is not None]
        for path in list(self._opened):
            self.discard(path)
        return finished


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
