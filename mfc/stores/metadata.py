"""Run metadata on a blob store: run records, final status and tags.

Keys: ``<Flow>/<run>/_run.json`` (written once, claims the run id), ``_status.json`` (written
when the run ends), ``_tags.json`` (user tags, rewritten by tag changes).
"""

from __future__ import annotations

import json
import time
from typing import Any

from mfc.stores.blob import BlobStore
from mfc.stores.records import read_record

# What each record must hold to be read at all (MalformedRecord otherwise).
REQUIRED: dict[str, dict[str, Any]] = {"run": {"created_at": (int, float)}, "status": {"status": str},
                                       "tags": {"tags": list}}


def _now() -> float:
    return round(time.time(), 3)


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

    def set_tags(self, flow: str, run_id: str, tags: list[str]) -> None:
        self.blobs.put_bytes(self._key(flow, run_id, "tags"), json.dumps({"tags": sorted(set(tags))}).encode())

    def run_ids(self, flow: str) -> list[str]:
        """Run ids of a flow, newest first."""
        names = [n for n in self.blobs.list(f"{flow}/") if n != "data" and not n.startswith(".")]
        return sorted(names, key=lambda n: (len(n), n), reverse=True)

    def flows(self) -> list[str]:
        return sorted(n for n in self.blobs.list("") if not n.startswith("."))
