"""Per-task records: one JSON document per attempt (artifact index, status, foreach state,
timings, exception) plus the attempt's stdout and stderr logs.

Keys: ``<Flow>/<run>/<step>/<task>/<attempt>.json|.stdout|.stderr``. The JSON is written last,
atomically and create-only (a second writer of the same attempt is refused), so its presence
marks the attempt as finished. ``<task>/final.json`` (``{"attempt": n}``, create-only) names
the attempt that ended the task, so a join needs only its parents' task ids. A foreach's
``<attempt>.split.json`` is its split list: a JSON array of the items' content addresses, every
entry the same width (the foreach record's ``width``: 64 in runs from before it was recorded),
so the child for item ``i`` reads only its own entry (and a Step Functions Map
``ItemReader`` can read the array as it is).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mfc.exceptions import MalformedRecord
from mfc.pathspec import is_valid
from mfc.stores.blob import BlobNotFound, BlobStore
from mfc.stores.integrity import is_digest
from mfc.stores.taskrecord import TaskRecord
from mfc.taskid import sort_key

LOG_STREAMS = ("stdout", "stderr")
TASK_FIELDS: dict[str, Any] = {"status": str, "artifacts": dict}  # what every attempt record holds
FINAL = "final.json"
SHA_WIDTH = 64  # the width of a split list's entries when its foreach record gives none


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

    def write(self, run_id: str, step: str, task_id: str, attempt: int, record: TaskRecord | dict[str, Any]) -> bool:
        """Write an attempt's record, create-only: False (and nothing written) if the attempt
        already has one, whoever wrote it (the task's own late record, the orchestrator's)."""
        if not isinstance(record, TaskRecord):
            record = TaskRecord.from_dict(record)
        return self.blobs.put_new(self.key(run_id, step, task_id, attempt, "json"), record.to_json())

    def register_start(self, run_id: str, step: str, task_id: str, attempt: int, started_at: float,
                       foreach_index: int | None, item: Callable[[], Any] | None = None) -> None:
        """Note that an attempt started: nothing to do in the datastore (its logs show it); the
        service provider's records tell the service."""

    def finish(self, run_id: str, step: str, task_id: str, attempt: int, record: TaskRecord, final: bool) -> bool:
        """Write an attempt's record (create-only, as :meth:`write`) and, with ``final``, name it
        the attempt that ended the task; False (and nothing written) if it had a record already."""
        if not self.write(run_id, step, task_id, attempt, record):
            return False
        if final:
            self.write_final(run_id, step, task_id, attempt)
        return True

    def write_many(self, run_id: str, entries: list[tuple[str, str, int, TaskRecord]]) -> list[bool]:
        """Write several attempts' records ``(step, task_id, attempt, record)`` in one batch,
        each create-only as :meth:`write`; whether each was written."""
        keys = [self.key(run_id, step, task_id, attempt, "json") for step, task_id, attempt, _ in entries]
        created = self.blobs.put_new_many({key: record.to_json() for key, (*_, record) in zip(keys, entries, strict=True)})
        return [key in created for key in keys]

    def read(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any] | None:
        """An attempt's record, None while there is none; MalformedRecord (naming the file) if it
        does not parse."""
        return read_record(self.blobs, self.key(run_id, step, task_id, attempt, "json"), TASK_FIELDS)

    def read_task(self, run_id: str, step: str, task_id: str, attempt: int) -> TaskRecord | None:
        """An attempt's record as a :class:`TaskRecord`, None while there is none."""
        key = self.key(run_id, step, task_id, attempt, "json")
        try:
            data = self.blobs.get_bytes(key)
        except BlobNotFound:
            return None
        return TaskRecord.from_json(data, location(self.blobs, key))

    # -- the final attempt of a task ----------------------------------------------------------------
    def final_key(self, run_id: str, step: str, task_id: str) -> str:
        return task_prefix(self.flow_name, run_id, step, task_id) + FINAL

    def write_final(self, run_id: str, step: str, task_id: str, attempt: int) -> bool:
        """Name ``attempt`` as the one that ended the task (create-only: the first one stays)."""
        data = json.dumps({"attempt": attempt}).encode()
        return self.blobs.put_new(self.final_key(run_id, step, task_id), data)

    def write_final_many(self, run_id: str, tasks: list[tuple[str, str, int]]) -> list[bool]:
        """:meth:`write_final` for several tasks ``(step, task_id, attempt)`` in one batch."""
        keys = [self.final_key(run_id, step, task_id) for step, task_id, _ in tasks]
        created = self.blobs.put_new_many({key: json.dumps({"attempt": attempt}).encode()
                                           for key, (_, _, attempt) in zip(keys, tasks, strict=True)})
        return [key in created for key in keys]

    def final_many(self, run_id: str, tasks: list[tuple[str, str, int | None]]) -> list[dict[str, Any] | None]:
        """The records of several tasks ``(step, task_id, attempt)`` in two batched reads: the
        final-attempt pointers of those given no attempt, then the records. A task without a
        pointer (a run from before pointers) gives its latest finished attempt."""
        pointers = self.blobs.get_many([self.final_key(run_id, s, t) for s, t, a in tasks if a is None])
        chosen: list[int | None] = []
        for step, task_id, attempt in tasks:
            key = self.final_key(run_id, step, task_id)
            if attempt is None and key in pointers:
                attempt = _pointer(pointers[key], location(self.blobs, key))
            chosen.append(attempt)
        keys = [self.key(run_id, s, t, a, "json") for (s, t, _), a in zip(tasks, chosen, strict=True) if a is not None]
        found = self.blobs.get_many(keys)
        out: list[dict[str, Any] | None] = []
        for (step, task_id, _), attempt in zip(tasks, chosen, strict=True):
            if attempt is None:
                out.append(self.latest(run_id, step, task_id))
                continue
            key = self.key(run_id, step, task_id, attempt, "json")
            out.append(parse_record(found[key], location(self.blobs, key), TASK_FIELDS) if key in found else None)
        return out

    def ended_many(self, run_id: str, step: str, task_ids: list[str]) -> list[dict[str, Any] | MalformedRecord | None]:
        """What each task ended with, as :meth:`latest` gives it, in batched reads: the record its
        final-attempt pointer names (the pointers, then the records, one batch each), else (a
        task without a pointer: a run from before pointers, an attempt cut short) its latest
        finished attempt. A damaged pointer or record is returned in its place, not raised."""
        pointers = self.blobs.get_many([self.final_key(run_id, step, t) for t in task_ids])
        chosen: dict[str, int] = {}
        out: dict[str, dict[str, Any] | MalformedRecord | None] = {}
        for task_id in task_ids:
            key = self.final_key(run_id, step, task_id)
            if key in pointers:
                try:
                    chosen[task_id] = _pointer(pointers[key], location(self.blobs, key))
                except MalformedRecord as exc:
                    out[task_id] = exc
        keys = {task_id: self.key(run_id, step, task_id, attempt, "json") for task_id, attempt in chosen.items()}
        found = self.blobs.get_many(list(keys.values()))
        for task_id in task_ids:
            if task_id in out:
                continue
            try:
                record_key = keys.get(task_id)
                if record_key is not None and record_key in found:
                    out[task_id] = parse_record(found[record_key], location(self.blobs, record_key), TASK_FIELDS)
                else:
                    out[task_id] = self.latest(run_id, step, task_id)
            except MalformedRecord as exc:
                out[task_id] = exc
        return [out[task_id] for task_id in task_ids]

    # -- split lists ----------------------------------------------------------------------------
    def split_key(self, run_id: str, step: str, task_id: str, attempt: int) -> str:
        return self.key(run_id, step, task_id, attempt, "split.json")

    def write_split(self, key: str, shas: list[str]) -> int:
        """A foreach's split list: a JSON array of content addresses, all of one width (which
        is returned: the foreach record keeps it for :meth:`split_item`)."""
        width = len(shas[0]) if shas else SHA_WIDTH
        if any(len(sha) != width or not is_digest(sha) for sha in shas):
            raise ValueError("split entries must be content addresses of one width")
        self.blobs.put_bytes(key, ("[" + ",".join(f'"{sha}"' for sha in shas) + "]").encode())
        return width

    def split_item(self, key: str, index: int, width: int = SHA_WIDTH) -> str:
        """Entry ``index`` of a split list of ``width``-wide entries, read alone (a byte range,
        not the whole list)."""
        data = self.blobs.get_range(key, 1 + index * (width + 3), width + 2)  # '"<sha>",'
        text = data.decode("ascii", "replace")
        if len(text) != width + 2 or text[0] != '"' or text[-1] != '"':
            raise MalformedRecord(location(self.blobs, key), f"it has no entry {index}")
        return text[1:-1]

    def foreach_item(self, split: dict[str, Any], index: int) -> str:
        """Item ``index`` of the split list that a foreach record (``{"split": key, ...}``) names."""
        return self.split_item(split["split"], index, split_width(split))

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
        """The step's task ids, by foreach index (numbered ids of older runs: by number)."""
        names = self.blobs.list(f"{self.flow_name}/{run_id}/{step}/")
        return sorted((n for n in names if is_valid(n, "task id")), key=sort_key)


def _pointer(data: bytes, where: str) -> int:
    pointer = parse_record(data, where, {"attempt": int})
    return pointer["attempt"]


def split_width(split: dict[str, Any]) -> int:
    """The entry width of the split list a foreach record names (64: a run from before it was
    recorded, when every entry was a sha256)."""
    width = split.get("width")
    return width if isinstance(width, int) and not isinstance(width, bool) and width > 0 else SHA_WIDTH
