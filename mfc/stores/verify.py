"""Check what runs left in the datastore (``mfc verify``, and resume's check of what it clones).

A run is sound when its records parse, every object a record names (artifacts, foreach inputs
and items, the code package) is stored and hashes to its address, every attempt of every task
has its record and logs, and (once it succeeded) every step of its graph has tasks. Objects are
checked on a thread pool, each once however many tasks (or runs) share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mfc.exceptions import CorruptArtifact, MalformedRecord, MissingData
from mfc.stores.artifacts import SPOOL_LIMIT, ArtifactStore
from mfc.stores.blob import BlobNotFound, BlobStore
from mfc.stores.integrity import drain
from mfc.stores.metadata import REQUIRED
from mfc.stores.provider import MetadataProvider
from mfc.stores.records import LOG_STREAMS, TASK_FIELDS, location, parse_record, read_record

ENDED = ("succeeded", "failed", "interrupted")


@dataclass(frozen=True)
class Problem:
    """One damaged or missing part of a run: ``kind`` (corrupt, missing, malformed), what it is
    (``where``: a pathspec or a file) and one line saying what is wrong."""

    kind: str
    where: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "message": self.message}


@dataclass
class RunCheck:
    """What checking one run found."""

    flow: str
    run_id: str
    status: str | None = None
    problems: list[Problem] = field(default_factory=list)
    records: int = 0
    objects: int = 0
    object_bytes: int = 0
    logs: int = 0

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"pathspec": self.pathspec, "status": self.status, "ok": self.ok,
                "problems": [p.to_json() for p in self.problems],
                "checked": {"records": self.records, "objects": self.objects, "object_bytes": self.object_bytes,
                            "logs": self.logs}}


def object_refs(record: dict[str, Any]) -> Iterator[tuple[str, int | None, str]]:
    """(sha, payload size if known, what it is) of every object a task record names."""
    for name, ref in (record.get("artifacts") or {}).items():
        if isinstance(ref, list) and ref and isinstance(ref[0], str):
            yield ref[0], ref[1] if len(ref) > 1 and isinstance(ref[1], int) else None, f"artifact {name!r}"
    for depth, frame in enumerate(record.get("foreach_stack") or []):
        if isinstance(frame, dict) and isinstance(frame.get("input"), str):
            yield frame["input"], None, f"foreach input (depth {depth})"
    split = record.get("foreach")
    if isinstance(split, dict):
        for index, sha in enumerate(split.get("items") or []):
            if isinstance(sha, str):
                yield sha, None, f"foreach item {index} of {split.get('var')!r}"


def check_object(blobs: BlobStore, flow: str, sha: str, size: int | None = None, full: bool = True) -> CorruptArtifact | None:
    """None if the object is stored intact, else what is wrong with it. ``full=False`` reads only
    objects small enough to be cheap and checks a large one's stored size (a large object is
    always stored raw: one header byte, then the payload)."""
    store = ArtifactStore(blobs, flow)
    key = store.key(sha)
    try:
        if not full and size is not None and size > SPOOL_LIMIT:
            stored = blobs.size(key)
            if stored is None:
                return MissingData("", sha=sha, location=store.location(sha))
            if stored != size + 1:
                return CorruptArtifact(f"it holds {stored} bytes where {size + 1} were stored", sha=sha,
                                       location=store.location(sha))
            return None
        with blobs.open(key) as fh:
            drain(fh)
    except BlobNotFound:
        return MissingData("", sha=sha, location=store.location(sha))
    except CorruptArtifact as exc:
        return exc
    return None


def _named(exc: CorruptArtifact, pathspec: str, what: str, others: int) -> str:
    fresh = type(exc)(exc.why, sha=exc.sha, location=exc.location, hint="").within(pathspec, what=what)
    return str(fresh) + (f" (named by {others} more task records)" if others else "")


class Verifier:
    """Checks runs of one flow; an object shared by several tasks or runs is checked once."""

    def __init__(self, blobs: BlobStore, flow: str, workers: int | None = None,
                 metadata: MetadataProvider | None = None) -> None:
        from mfc.stores.provider import open_metadata

        self.blobs = blobs
        self.flow = flow
        self.metadata = metadata if metadata is not None else open_metadata(blobs)
        self.records = self.metadata.records(flow)
        self._checked: dict[str, CorruptArtifact | None] = {}
        self._pool = ThreadPoolExecutor(workers or min(32, 4 * (os.cpu_count() or 1)), thread_name_prefix="mfc-verify")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _record(self, check: RunCheck, name: str) -> dict[str, Any] | None:
        key = f"{self.flow}/{check.run_id}/_{name}.json"
        try:
            record = read_record(self.blobs, key, REQUIRED[name])
        except MalformedRecord as exc:
            check.problems.append(Problem("malformed", exc.location, str(exc)))
            return None
        if record is not None:
            check.records += 1
        elif name == "run":
            check.problems.append(Problem("missing", location(self.blobs, key),
                                          f"run {check.pathspec} has no run record ({location(self.blobs, key)})"))
        return record

    def has_run(self, run_id: str) -> bool:
        """Whether anything of the run is stored (even a run whose own record is gone)."""
        return bool(self.blobs.list(f"{self.flow}/{run_id}/"))

    def run(self, run_id: str) -> RunCheck:
        """Check one run."""
        check = RunCheck(self.flow, run_id)
        run = self._record(check, "run")
        status = self._record(check, "status")
        self._record(check, "tags")
        check.status = status["status"] if status else None
        if status is None and run is not None:
            try:
                merged = self.metadata.run(self.flow, run_id)
                check.status = merged.get("status") if merged else None
            except MalformedRecord:
                pass
        recorded = run.get("graph") if run is not None else None
        graph = recorded if isinstance(recorded, dict) else {}
        tasks = self._tasks(run_id, list(graph))
        wanted: dict[str, list[tuple[str, int | None, str]]] = {}
        parsed = self._read_task_records(check, tasks)
        for (step, task_id), names in tasks.items():
            pathspec = f"{self.flow}/{run_id}/{step}/{task_id}"
            attempts = sorted({int(n.split(".", 1)[0]) for n in names if n.split(".", 1)[0].isdigit()})
            if not attempts and check.status == "succeeded":
                check.problems.append(Problem("missing", pathspec, f"task {pathspec} has no record (missing or deleted)"))
            for attempt in attempts:
                record = parsed.get((step, task_id, attempt))
                if f"{attempt}.json" not in names:
                    if check.status == "succeeded":
                        which = f"task {pathspec}" if attempt == attempts[-1] else f"attempt {attempt} of task {pathspec}"
                        check.problems.append(Problem("missing", pathspec, f"{which} has no record (missing or deleted)"))
                    continue
                if record is None:
                    continue  # malformed: reported when it was read
                for sha, size, what in object_refs(record):
                    wanted.setdefault(sha, []).append((pathspec, size, what))
                if not step.startswith("_") and not record.get("origin_pathspec") and not record.get("died"):
                    # a clone's logs stay with its origin; a task that died may never have started
                    self._check_logs(check, pathspec, attempt, names, step, task_id)
        if check.status == "succeeded" and run is not None:
            present = {step for step, _ in tasks}
            for step in (run.get("graph") or {}):
                if step not in present:
                    check.problems.append(Problem("missing", f"{check.pathspec}/{step}",
                                                  f"step {step} of {check.pathspec} has no tasks (records missing or deleted)"))
        code = (run or {}).get("code_package") or {}
        if isinstance(code, dict) and isinstance(code.get("sha256"), str):
            wanted.setdefault(code["sha256"], []).append((check.pathspec, None, "code package"))
        self._check_objects(check, wanted)
        return check

    def _tasks(self, run_id: str, order: list[str]) -> dict[tuple[str, str], set[str]]:
        """(step, task id) -> names of the files in the task's directory, steps in graph
        ``order`` (so an object's first user named is the task that made it)."""
        prefix = f"{self.flow}/{run_id}/"
        rank = {step: index for index, step in enumerate(order)}
        steps = sorted(self.metadata.steps(self.flow, run_id, internal=True),  # _parameters too
                       key=lambda step: (not step.startswith("_"), rank.get(step, len(rank)), step))
        listed = list(self._pool.map(lambda step: (step, self.records.tasks(run_id, step)), steps))
        pairs = [(step, task_id) for step, ids in listed for task_id in ids]
        names = self._pool.map(lambda pair: set(self.blobs.list(f"{prefix}{pair[0]}/{pair[1]}/")), pairs)
        return dict(zip(pairs, names, strict=True))

    def _read_task_records(self, check: RunCheck, tasks: dict[tuple[str, str], set[str]]) -> dict[tuple, dict]:
        keys = {}
        for (step, task_id), names in tasks.items():
            for name in names:
                head, _, suffix = name.partition(".")
                if suffix == "json" and head.isdigit():
                    keys[self.records.key(check.run_id, step, task_id, int(head), "json")] = (step, task_id, int(head))
        found = self.blobs.get_many(keys)
        parsed = {}
        for key, data in found.items():
            try:
                parsed[keys[key]] = parse_record(data, location(self.blobs, key), TASK_FIELDS)
                check.records += 1
            except MalformedRecord as exc:
                check.problems.append(Problem("malformed", exc.location, str(exc)))
        return parsed

    def _check_logs(self, check: RunCheck, pathspec: str, attempt: int, names: set[str], step: str,
                    task_id: str) -> None:
        for stream in LOG_STREAMS:
            if f"{attempt}.{stream}" in names or f"{attempt}.{stream}.0" in names:  # whole, or parts
                check.logs += 1
                continue
            key = self.records.log_key(check.run_id, step, task_id, attempt, stream)
            check.problems.append(Problem("missing", location(self.blobs, key),
                                          f"{pathspec}: the {stream} log of attempt {attempt} is missing "
                                          f"({location(self.blobs, key)})"))

    def _check_objects(self, check: RunCheck, wanted: dict[str, list[tuple[str, int | None, str]]]) -> None:
        todo = [sha for sha in wanted if sha not in self._checked]
        for sha, found in zip(todo, self._pool.map(lambda sha: check_object(self.blobs, self.flow, sha), todo),
                              strict=True):
            self._checked[sha] = found
        for sha, users in wanted.items():
            check.objects += 1
            check.object_bytes += next((size for _, size, _ in users if size is not None), 0)
            found = self._checked[sha]
            if found is not None:
                pathspec, _, what = users[0]
                kind = "missing" if isinstance(found, MissingData) else "corrupt"
                check.problems.append(Problem(kind, found.location or sha, _named(found, pathspec, what, len(users) - 1)))


def damaged_objects(blobs: BlobStore, flow: str, records: Iterable[tuple[str, dict[str, Any]]],
                    workers: int = 16) -> dict[str, list[CorruptArtifact]]:
    """Cheaply (see :func:`check_object`) check the objects named by ``records`` (pathspec,
    record); returns pathspec -> the damage found among that record's objects."""
    wanted: dict[str, tuple[int | None, list[tuple[str, str]]]] = {}
    for pathspec, record in records:
        for sha, size, what in object_refs(record):
            entry = wanted.setdefault(sha, (size, []))
            entry[1].append((pathspec, what))
    shas = list(wanted)
    with ThreadPoolExecutor(workers, thread_name_prefix="mfc-verify") as pool:
        results = list(pool.map(lambda sha: check_object(blobs, flow, sha, wanted[sha][0], full=False), shas))
    damaged: dict[str, list[CorruptArtifact]] = {}
    for sha, found in zip(shas, results, strict=True):
        if found is None:
            continue
        for pathspec, what in wanted[sha][1]:
            damaged.setdefault(pathspec, []).append(
                type(found)(found.why, sha=found.sha, location=found.location, hint="").within(pathspec, what=what))
    return damaged


__all__ = ["Problem", "RunCheck", "Verifier", "check_object", "damaged_objects", "object_refs", "ENDED"]
