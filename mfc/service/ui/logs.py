"""Task logs for the task page: read from the datastore the attempt's row names, and only from
the roots this service was allowed to read (``app.state.datastore_roots``); a writer's row
never makes the service open a path of its choosing."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from sqlalchemy.engine import Row

from mfc.exceptions import MfcError
from mfc.pathspec import is_valid

TAIL_BYTES = 256 * 1024  # of a log read for its last lines


def _allowed(root: str, roots: list[str]) -> bool:
    clean = root.rstrip("/")
    return any(clean == r.rstrip("/") for r in roots)


def _key_ok(key: str) -> bool:
    parts = key.split("/")
    return len(parts) >= 5 and all(p not in ("", ".", "..") for p in parts) and is_valid(parts[0], "flow")


def log_reader(request: Request) -> Callable[[Row, str], str]:
    """``read(attempt_row, stream)``: the end of that attempt's stdout or stderr as text, or a
    line saying why it cannot be shown."""
    roots = [str(r) for r in (getattr(request.app.state, "datastore_roots", None) or [])]

    def read(attempt: Row, stream: str) -> str:
        logs = attempt.logs if isinstance(attempt.logs, dict) else {}
        root, key = logs.get("root"), logs.get(stream)
        if not root or not key:
            return ""
        if not isinstance(root, str) or not isinstance(key, str) or not _allowed(root, roots) or not _key_ok(key):
            return f"(this log is in {root}, which this service may not read: start it with --datastore-root)"
        from mfc.stores.blob import open_blob_store

        try:
            data = open_blob_store(root).read_log(key)
        except (MfcError, OSError) as exc:
            return f"(the log could not be read: {exc})"
        return data[-TAIL_BYTES:].decode("utf-8", "replace")
    return read
