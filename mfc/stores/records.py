"""Per-task records: one JSON document per attempt (artifact index, status, foreach state,
timings, exception) plus the attempt's stdout and stderr logs.

Keys: ``<Flow>/<run>/<step>/<task>/<attempt>.json|.stdout|.stderr``. The JSON is written last
and atomically, so its presence marks the attempt as finished.
"""

from __future__ import annotations

import json
from typing import Any

from mfc.exceptions import MalformedRecord
from mfc.pathspec import is_valid
from mfc.stores.blob import BlobNotFound, BlobStore

LOG_STREAMS = ("stdout", "stderr")
TASK_FIELDS: dict[str, Any] = {"status": str, "artifacts": dict}  # what every attempt record holds


def location(blobs: BlobStore, key: str) -> str:
    """Where a blob lives, for messages: its path on a local datastore, else its URL."""
    return blobs.local_path(key) or f"{blobs.root}/{key}"


def parse_record(data: bytes, where: str, required: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON record: an object whose ``required`` fields (name -> type) are there with that type;
    MalformedRecord naming ``where`` otherwise."""
    try:
        record = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        why = "it is empty" if not data.strip() else f"it is not JSON ({exc})"
        raise MalformedRecord(where, why) from None
    if not isinstance(record, dict):
        raise MalformedRecord(where, f"it holds a JSON {type(record).__name__}, not an object")
    for field, kind in (required or {}).items():
        if field not in record:
            raise MalformedRecord(where, f"it has no {field!r} field")
        if not isinstance(record[field], kind) or isinstance(record[field], bool):
            raise MalformedRecord(where, f"its {field!r} field is a {type(record[field]).__name__}")
    return record


def read_record(blobs: BlobStore, key: str, required: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The parsed JSON record under key, None if there is none; MalformedRecord if it is damaged."""
    try:
        data = blobs.get_bytes(key)
    except BlobNotFound:
        return None
    return parse_record(data, location(blobs, key), required)


def task_prefix(flow: str, run_id: str, step: str, task_id: str) -> str:
    return f"{flow}/{run_id}/{step}/{task_id}/"


class TaskRecords:
    """Read and write task attempt records of one flow."""

    def __init__(self, blobs: BlobStore, flow_name: str) -> None:
        self.blobs = blobs
        self.flow_name = flow_name

    def key(self, run_id: str, step: str, task_id: str, attempt: int, suffix: str) -> str:
        return f"{task_prefix(self.flow_name, run_id, step, task_id)}{attempt}.{suffix}"

    def write(self, run_id: str, step: str, task_id: str, attempt: int, record: dict[str, Any]) -> None:
        data = json.dumps(record, separators=(",", ":"), default=str).encode()
        self.blobs.put_bytes(self.key(run_id, step, task_id, attempt, "json"), data)

    def read(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any] | None:
        """An attempt's record, None while there is none; MalformedRecord (naming the file) if it
        does not parse."""
        return read_record(self.blobs, self.key(run_id, step, task_id, attempt, "json"), TASK_FIELDS)

    def attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        """Attempt numbers with a record or a log, ascending."""
        names = self.blobs.list(task_prefix(self.flow_name, run_id, step, task_id))
        found = {int(n.split(".", 1)[0]) for n in names if n.split(".", 1)[0].isdigit()}
        return sorted(found)

    def latest(self, run_id: str, step: str, task_id: str) -> dict[str, Any] | None:
        """The record of the last finished attempt."""
        for attempt in reversed(self.attempts(run_id, step, task_id)):
            record = self.read(run_id, step, task_id, attempt)
            if record is not None:
                return record
        return None

    def log_key(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        return self.key(run_id, step, task_id, attempt, stream)

    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> bytes:
        """An attempt's log, or what it has written so far while it runs (empty if nothing)."""
        return self.blobs.read_log(self.log_key(run_id, step, task_id, attempt, stream))

    def steps(self, run_id: str) -> list[str]:
        names = self.blobs.list(f"{self.flow_name}/{run_id}/")
        return sorted(n for n in names if not n.startswith("_") and is_valid(n, "step"))

    def tasks(self, run_id: str, step: str) -> list[str]:
        names = self.blobs.list(f"{self.flow_name}/{run_id}/{step}/")
        return sorted(names, key=lambda n: (len(n), n))
