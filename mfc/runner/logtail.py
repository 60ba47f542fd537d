"""Follow the log files of running tasks and hand complete new lines to a callback."""

from __future__ import annotations

import os
from collections.abc import Callable

LineCallback = Callable[[str, str, str], None]  # (prefix, stream, line)


class LogTailer:
    """Tracks read offsets per (task, stream) file."""

    def __init__(self, on_line: LineCallback) -> None:
        self.on_line = on_line
        self._files: dict[str, tuple[str, str, int, bytes]] = {}  # path -> (prefix, stream, offset, partial)

    def add(self, prefix: str, stream: str, path: str) -> None:
        self._files[path] = (prefix, stream, 0, b"")

    def poll(self, paths: list[str] | None = None) -> None:
        for path in list(paths if paths is not None else self._files):
            entry = self._files.get(path)
            if entry is None:
                continue
            prefix, stream, offset, partial = entry
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if size <= offset:
                continue
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = partial + fh.read(size - offset)
            *lines, rest = data.split(b"\n")
            for line in lines:
                self.on_line(prefix, stream, line.decode("utf-8", "replace"))
            self._files[path] = (prefix, stream, size, rest)

    def finish(self, path: str) -> None:
        """Read what is left of a file, including a last line without a newline, and forget it."""
        self.poll([path])
        entry = self._files.pop(path, None)
        if entry and entry[3]:
            self.on_line(entry[0], entry[1], entry[3].decode("utf-8", "replace"))
