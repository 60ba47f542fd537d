"""Run metadata on a blob store: run records, final status and tags.

Keys: ``<Flow>/<run>/_run.json`` (written once, claims the run id), ``_status.json`` (written
when the run ends), ``_tags.json`` (user tags, rewritten by tag changes with compare-and-swap writes).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from mfc.exceptions import MfcError
from mfc.pathspec import is_valid
from mfc.stores.blob import BlobNotFound, BlobStore

TAG_WRITE_ATTEMPTS = 100


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
        try:
            return json.loads(self.blobs.get_bytes(key))
        except BlobNotFound:
            return None

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

    def run(self, flow: str, run_id: str) -> dict[str, Any] | None:
        """The run's record merged with its status and tags; None if there is no such run."""
        record = self._read(self._key(flow, run_id, "run"))
        if record is None:
            return None
        status = self._read(self._key(flow, run_id, "status"))
        record["status"] = status["status"] if status else "running"
        record["finished_at"] = status.get("finished_at") if status else None
        record["result"] = status or {}
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
