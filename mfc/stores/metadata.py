"""Run metadata on a blob store: run records, final status and tags.

Keys: ``<Flow>/<run>/_run.json`` (written once, claims the run id), ``_status.json`` (written
when the run ends), ``_tags.json`` (user tags, rewritten by tag changes with compare-and-swap
writes), ``_lease.json`` (the heartbeat of the process driving the run, see
:mod:`mfc.stores.lease`). A run's status comes from :func:`mfc.stores.runstatus.run_state`, here
and only here.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from mfc.exceptions import MalformedRecord, MfcError
from mfc.pathspec import is_valid
from mfc.stores.blob import BlobNotFound, BlobStore
from mfc.stores.lease import probe
from mfc.stores.records import read_record
from mfc.stores.runstatus import FINAL_STATUSES, LEGACY_GRACE_SECONDS, RunState, run_state

_UNREAD: Any = object()

TAG_WRITE_ATTEMPTS = 100

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


class BlobMetadata:
    """The embedded metadata provider: JSON documents next to the data."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def _key(self, flow: str, run_id: str, name: str) -> str:
        return f"{flow}/{run_id}/_{name}.json"

    def _read(self, key: str) -> dict[str, Any] | None:
        """A run-level record, None if absent; MalformedRecord naming its file if it is damaged."""
        name = key.rsplit("/_", 1)[-1].removesuffix(".json")
        return read_record(self.blobs, key, REQUIRED.get(name))

    def create_run(self, flow: str, info: dict[str, Any]) -> str:
        """Claim a new run id (milliseconds since the epoch, bumped on a clash) and record the run."""
        candidate = int(time.time() * 1000)
        while True:
            run_id = str(candidate)
            record = {**info, "flow": flow, "run_id": run_id, "created_at": _now()}
            data = json.dumps(record, separators=(",", ":"), default=str).encode()
            if self.blobs.put_new(self._key(flow, run_id, "run"), data):
                return run_id
            candidate += 1

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
        if lease is _UNREAD:
            try:
                lease = self._read(self._key(flow, run_id, "lease"))
            except ValueError:  # a damaged heartbeat: fall back to the run record's driver
                lease = None
        driver = record.get("driver")
        seen = lease or driver
        created_at, now = record.get("created_at") or 0.0, time.time()
        old = seen is None and now - created_at > LEGACY_GRACE_SECONDS  # only then do its tasks matter
        return run_state(final, lease, driver, created_at, now, probe(seen) if seen else None,
                         self._last_activity(flow, run_id) if old else None)

    def _last_activity(self, flow: str, run_id: str) -> float | None:
        """The newest task record time of a run (only asked of runs recorded without a lease)."""
        from mfc.stores.records import TaskRecords

        records = TaskRecords(self.blobs, flow)
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
        record = self._read(self._key(flow, run_id, "run"))
        if record is None:
            return None
        status = self._read(self._key(flow, run_id, "status"))
        state = self.state(flow, run_id, record, status)
        record["status"] = state.status
        record["finished_at"] = state.ended_at
        record["result"] = status or ({"status": "crashed", "error": state.reason} if state.status == "crashed" else {})
        tags = self._read(self._key(flow, run_id, "tags"))
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
        return sorted(n for n in self.blobs.list("") if is_valid(n, "flow"))
