"""The local metadata provider (:class:`BlobMetadata`, the ``metadata = local`` implementation of
:class:`mfc.stores.provider.MetadataProvider`): run records, final status, tags and leases as
JSON documents on the datastore's blob store.

Keys: ``<Flow>/<run>/_run.json`` (written once, claims the run id), ``_status.json`` (written
when the run ends), ``_tags.json`` (user tags, rewritten by tag changes with compare-and-swap
writes), ``_lease.json`` (the heartbeat of the process driving the run, see
:mod:`mfc.stores.lease`). A run's status comes from :func:`mfc.stores.runstatus.run_state`, here
and only here. Listings read each page of runs' records in one batch (``get_many``).

A run a Step Functions execution drives has no lease: without a final status, its status is the
execution's, asked through ``execution_probe`` (installed by :func:`mfc.stores.provider.open_metadata`
for readers; a task never asks). A reader that finds the execution ended records the final
status itself (create-only, where the store lets it write), so later readers need not ask.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mfc.exceptions import MalformedRecord, MfcError
from mfc.pathspec import check_run_id, is_valid
from mfc.stores.blob import BlobNotFound, BlobStore
from mfc.stores.lease import probe
from mfc.stores.provider import ExecutionProbe, MetadataProvider, RunExists, RunRead
from mfc.stores.records import TaskRecords, location, parse_record, read_record
from mfc.stores.runstatus import FINAL_STATUSES, LEGACY_GRACE_SECONDS, SFN_DRIVER, RunState, run_state

_UNREAD: Any = object()

TAG_WRITE_ATTEMPTS = 100
RUN_RECORDS = ("run", "status", "tags")  # read for every run listed; its lease only while it has no final status

# What each record must hold to be read at all (MalformedRecord otherwise).
REQUIRED: dict[str, dict[str, Any]] = {"run": {"created_at": (int, float)}, "status": {"status": str},
                                       "tags": {"tags": list}}


def _now() -> float:
    return round(time.time(), 3)


def _tag_list(data: bytes, where: str) -> list[str]:
    try:
        tags = json.loads(data)["tags"]
    except (ValueError, KeyError, TypeError):
        tags = None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise MfcError(f"{where} is not a tags record ({{\"tags\": [...]}}); fix or remove it")
    return tags


class BlobMetadata(MetadataProvider):
    """The local metadata provider: JSON documents next to the data, in the datastore itself."""

    def __init__(self, blobs: BlobStore, execution_probe: ExecutionProbe | None = None) -> None:
        super().__init__(blobs)
        self.execution_probe = execution_probe
        self._records: dict[str, TaskRecords] = {}

    def _key(self, flow: str, run_id: str, name: str) -> str:
        return f"{flow}/{run_id}/_{name}.json"

    def _read(self, key: str) -> dict[str, Any] | None:
        """A run-level record, None if absent; MalformedRecord naming its file if it is damaged."""
        name = key.rsplit("/_", 1)[-1].removesuffix(".json")
        return read_record(self.blobs, key, REQUIRED.get(name))

    def _parse(self, key: str, found: dict[str, bytes]) -> dict[str, Any] | None:
        """The record under ``key`` among blobs read already (None if absent), checked as :meth:`_read`."""
        if key not in found:
            return None
        name = key.rsplit("/_", 1)[-1].removesuffix(".json")
        return parse_record(found[key], location(self.blobs, key), REQUIRED.get(name))

    def create_run(self, flow: str, info: dict[str, Any], run_id: str | None = None) -> str:
        """Record a run. Without ``run_id``: claim a new id (milliseconds since the epoch, bumped on
        a clash). With one: create it, or accept an existing record with the same content."""
        if run_id is not None:
            check_run_id(run_id)
            return self._create_given(flow, info, run_id)
        candidate = int(time.time() * 1000)
        while True:
            run_id = str(candidate)
            if self.blobs.put_new(self._key(flow, run_id, "run"), _run_record(flow, run_id, info)):
                return run_id
            candidate += 1

    def _create_given(self, flow: str, info: dict[str, Any], run_id: str) -> str:
        key = self._key(flow, run_id, "run")
        data = _run_record(flow, run_id, info)
        if self.blobs.put_new(key, data):
            return run_id
        existing = self._read(key) or {}  # create-only: another writer's record, read back
        wanted = json.loads(data)
        differ = sorted(k for k in set(existing) | set(wanted)
                        if k != "created_at" and existing.get(k) != wanted.get(k))
        if differ:
            raise RunExists(f"run {flow}/{run_id} exists already with different content "
                            f"({', '.join(differ)} differ{'s' if len(differ) == 1 else ''}) in {self.blobs.root}",
                            hint="give another run id, or the same parameters and settings")
        return run_id

    def finish_run(self, flow: str, run_id: str, status: str, info: dict[str, Any] | None = None) -> None:
        record = {**(info or {}), "status": status, "finished_at": _now()}
        self.blobs.put_bytes(self._key(flow, run_id, "status"), json.dumps(record, default=str).encode())

    def write_lease(self, flow: str, run_id: str, lease: dict[str, Any]) -> None:
        """Write a heartbeat of the process driving the run (see :mod:`mfc.stores.lease`)."""
        self.blobs.put_bytes(self._key(flow, run_id, "lease"), json.dumps(lease, separators=(",", ":")).encode())

    def drop_lease(self, flow: str, run_id: str) -> None:
        """Remove the run's heartbeat record (a scratch run's)."""
        self.blobs.delete(self._key(flow, run_id, "lease"))

    def facts(self, flow: str, run_id: str) -> dict[str, dict[str, Any] | None]:
        """The run's ``run``, ``status`` and ``lease`` records, read in one batch (one round trip
        on S3); a missing or unreadable one is None."""
        keys = {name: self._key(flow, run_id, name) for name in ("run", "status", "lease")}
        found = self.blobs.get_many(keys.values())
        facts: dict[str, dict[str, Any] | None] = {}
        for name, key in keys.items():
            try:
                facts[name] = json.loads(found[key]) if key in found else None
            except ValueError:
                facts[name] = None
        return facts

    def state(self, flow: str, run_id: str, record: dict[str, Any] | None = None,
              final: dict[str, Any] | None = _UNREAD, lease: dict[str, Any] | None = _UNREAD) -> RunState:
        """The run's status from its facts (``record``: its ``_run.json``, read when not given;
        ``final`` and ``lease``: its ``_status.json`` and ``_lease.json`` when the caller has read
        them already)."""
        if final is _UNREAD:
            final = self._read(self._key(flow, run_id, "status"))
        if record is None:
            record = self._read(self._key(flow, run_id, "run")) or {}
        if final is not None and final.get("status") in FINAL_STATUSES:
            return run_state(final, None, None, record.get("created_at") or 0.0, time.time(), None)
        driver = record.get("driver")
        if isinstance(driver, dict) and driver.get("kind") == SFN_DRIVER:
            return self._execution_state(flow, run_id, record, driver)
        if lease is _UNREAD:
            try:
                lease = self._read(self._key(flow, run_id, "lease"))
            except MalformedRecord:  # a damaged heartbeat: fall back to the run record's driver
                lease = None
        seen = lease or driver
        created_at, now = record.get("created_at") or 0.0, time.time()
        old = seen is None and now - created_at > LEGACY_GRACE_SECONDS  # only then do its tasks matter
        return run_state(final, lease, driver, created_at, now, probe(seen) if seen else None,
                         self._last_activity(flow, run_id) if old else None)

    def _execution_state(self, flow: str, run_id: str, record: dict[str, Any], driver: dict[str, Any]) -> RunState:
        """A Step Functions run without a final status: its execution's, asked (when a probe is
        installed) and, once ended, recorded as the run's final status."""
        execution = self.execution_probe(driver) if self.execution_probe is not None else None
        state = run_state(None, None, driver, record.get("created_at") or 0.0, time.time(), None, execution=execution)
        if state.ended:
            self._record_end(flow, run_id, state, execution or {})
        return state

    def _record_end(self, flow: str, run_id: str, state: RunState, execution: dict[str, Any]) -> None:
        """Write the final status a reader derived from the run's ended execution, unless a task
        wrote one meanwhile. A store this reader may not write keeps asking instead."""
        final: dict[str, Any] = {"status": state.status, "finished_at": state.ended_at,
                                 "execution_status": execution.get("status")}
        if state.reason:
            final["error"] = state.reason
        try:
            self.blobs.put_new(self._key(flow, run_id, "status"), json.dumps(final, default=str).encode())
        except Exception:  # noqa: BLE001 - a read-only store or credentials: the status stands all the same
            pass

    def _last_activity(self, flow: str, run_id: str) -> float | None:
        """The newest task record time of a run (only asked of runs recorded without a lease)."""
        records = self.records(flow)
        latest = None
        for step in records.steps(run_id):
            for task_id in records.tasks(run_id, step):
                try:
                    record = records.latest(run_id, step, task_id) or {}
                except MalformedRecord:  # a damaged task record says nothing about when the run was alive
                    continue
                stamp = record.get("finished_at") or record.get("started_at")
                if isinstance(stamp, (int, float)) and (latest is None or stamp > latest):
                    latest = float(stamp)
        return latest

    def run(self, flow: str, run_id: str) -> dict[str, Any] | None:
        """The run's record merged with its status (see :meth:`state`) and tags; None if there is
        no such run. A crashed run's ``finished_at`` is its last sign of life and its
        ``result["error"]`` says why it is taken for crashed."""
        [(_, read)] = self.runs(flow, [run_id])
        if isinstance(read, MalformedRecord):
            raise read
        return read

    def runs(self, flow: str, run_ids: Sequence[str]) -> list[tuple[str, RunRead]]:
        """:meth:`run` of several runs, their records read in batches (parallel on S3): the run,
        status and tags records of all, then the leases of those without a final status."""
        found = self.blobs.get_many(self._key(flow, run_id, name) for run_id in run_ids for name in RUN_RECORDS)
        unfinished = [run_id for run_id in run_ids if self._key(flow, run_id, "run") in found
                      and not _final(found.get(self._key(flow, run_id, "status")))]
        found.update(self.blobs.get_many(self._key(flow, run_id, "lease") for run_id in unfinished))
        read: list[tuple[str, RunRead]] = []
        for run_id in run_ids:
            try:
                read.append((run_id, self._merge(flow, run_id, found)))
            except MalformedRecord as exc:
                read.append((run_id, exc))
        return read

    def _merge(self, flow: str, run_id: str, found: dict[str, bytes]) -> dict[str, Any] | None:
        """A run's merged record from its records among ``found`` (blobs read already)."""
        record = self._parse(self._key(flow, run_id, "run"), found)
        if record is None:
            return None
        status = self._parse(self._key(flow, run_id, "status"), found)
        try:
            lease = self._parse(self._key(flow, run_id, "lease"), found)
        except MalformedRecord:  # a damaged heartbeat: the run record's driver stands in
            lease = None
        state = self.state(flow, run_id, record, status, lease)
        record["status"] = state.status
        record["finished_at"] = state.ended_at
        record["result"] = status or ({"status": state.status, "error": state.reason} if state.reason else {})
        tags = self._parse(self._key(flow, run_id, "tags"), found)
        if tags is not None:
            record["tags"] = tags["tags"]
        return record

    def update_tags(self, flow: str, run_id: str, add: Iterable[str] = (), remove: Iterable[str] = (),
                    check: Callable[[list[str], list[str]], None] | None = None) -> list[str]:
        """Add and remove user tags; returns the run's tags after the change. Safe with concurrent
        writers: read, change, then write only if no one else wrote in between (else again).
        Repeating an update changes nothing, so a write whose answer was lost is harmless.
        ``check(new, old)`` may refuse the new set (raise) before it is written."""
        key, add, remove = self._key(flow, run_id, "tags"), set(add), set(remove)
        for attempt in range(TAG_WRITE_ATTEMPTS):
            try:
                data, version = self.blobs.get_versioned(key)
            except BlobNotFound:  # never edited: start from the tags the run was started with
                record = self._read(self._key(flow, run_id, "run"))
                if record is None:
                    raise MfcError(f"no run {flow}/{run_id} in {self.blobs.root}") from None
                version, current, base = None, None, record.get("tags") or []
            else:
                current = base = _tag_list(data, f"{self.blobs.root}/{key}")
            tags = sorted((set(base) - remove) | add)
            if tags == current:
                return tags
            if check is not None:
                check(tags, list(base))
            if self.blobs.put_if(key, json.dumps({"tags": tags}).encode(), version):
                return tags
            time.sleep(random.uniform(0, min(0.5, 0.005 * 2 ** attempt)))
        raise MfcError(f"the tags of run {flow}/{run_id} kept changing under {TAG_WRITE_ATTEMPTS} tries; try again")

    def run_ids(self, flow: str) -> list[str]:
        """Run ids of a flow, newest first."""
        names = [n for n in self.blobs.list(f"{flow}/") if n != "data" and is_valid(n, "run id")]
        return sorted(names, key=lambda n: (len(n), n), reverse=True)

    def flows(self) -> list[str]:
        """Names of the flows in the datastore, sorted."""
        return sorted(n for n in self.blobs.list("") if is_valid(n, "flow"))

    def run_exists(self, flow: str, run_id: str) -> bool:
        return bool(self.blobs.list(f"{flow}/{run_id}/"))

    def records(self, flow: str) -> TaskRecords:
        found = self._records.get(flow)
        if found is None:
            found = self._records[flow] = TaskRecords(self.blobs, flow)
        return found

    def steps(self, flow: str, run_id: str, internal: bool = False) -> list[str]:
        if not internal:
            return self.records(flow).steps(run_id)
        # directories only: _parameters and the steps, not the run's own _*.json records
        return sorted(n for n in self.blobs.list(f"{flow}/{run_id}/") if "." not in n)


def _final(data: bytes | None) -> bool:
    """Whether a ``_status.json`` (as read) holds a final status: then the run's lease is moot."""
    if data is None:
        return False
    try:
        record = json.loads(data)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("status") in FINAL_STATUSES


def _run_record(flow: str, run_id: str, info: dict[str, Any]) -> bytes:
    record = {**info, "flow": flow, "run_id": run_id, "created_at": _now()}
    return json.dumps(record, separators=(",", ":"), default=str).encode()
