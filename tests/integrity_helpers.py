"""Damage stored objects and records on purpose, on a local datastore or on S3, for the
integrity tests (``test_integrity.py``, ``test_verify.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support import records, task_records

from mfc.stores.artifacts import data_key
from mfc.stores.blob import open_blob_store

INTEGRITY_FLOW = """
    from mfc import FlowSpec, Parameter, step

    class IntegrityFlow(FlowSpec):
        offset = Parameter("offset", default=1)

        @step
        def start(self):
            self.value = 12345
            self.blob = b"compressible " * 1000
            self.next(self.middle)

        @step
        def middle(self):
            self.doubled = self.value * 2
            self.next(self.end)

        @step
        def end(self):
            self.final = self.doubled + self.offset
"""
FLOW = "IntegrityFlow"
FINAL = 12345 * 2 + 1


def damage_bytes(stored: bytes, how: str) -> bytes:
    """``stored`` flipped (12345 becomes 12346 when it is that int's pickle, else one bit in the
    middle), truncated to half, emptied, or with a byte appended."""
    if how == "flip":
        marker = b"M\x39\x30"  # BININT2 12345
        if marker in stored:
            return stored.replace(marker, b"M\x3a\x30", 1)
        middle = len(stored) // 2
        return stored[:middle] + bytes([stored[middle] ^ 1]) + stored[middle + 1:]
    if how == "truncate":
        return stored[: len(stored) // 2]
    if how == "empty":
        return b""
    if how == "append":
        return stored + b"\x00"
    raise ValueError(how)


class Damage:
    """Reads and rewrites raw objects under a datastore root (local dir or s3://, via the blob
    store's own client so moto answers)."""

    def __init__(self, root: str, client: Any = None) -> None:
        self.root = str(root)
        if self.root.startswith("s3://"):
            from mfc.stores.s3 import S3BlobStore

            self.blobs = S3BlobStore(self.root, client=client, verify_data=False)
        else:
            self.blobs = open_blob_store(self.root)

    def raw(self, key: str) -> bytes:
        if self.root.startswith("s3://"):
            answer = self.blobs.client.get_object(Bucket=self.blobs.bucket, Key=self.blobs.prefix + key)
            return answer["Body"].read()
        return (Path(self.root) / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        if self.root.startswith("s3://"):
            self.blobs.client.put_object(Bucket=self.blobs.bucket, Key=self.blobs.prefix + key, Body=data)
        else:
            (Path(self.root) / key).parent.mkdir(parents=True, exist_ok=True)
            (Path(self.root) / key).write_bytes(data)

    def delete(self, key: str) -> None:
        if self.root.startswith("s3://"):
            self.blobs.client.delete_object(Bucket=self.blobs.bucket, Key=self.blobs.prefix + key)
        else:
            (Path(self.root) / key).unlink()

    def damage(self, key: str, how: str) -> None:
        self.write(key, damage_bytes(self.raw(key), how))

    def location(self, key: str) -> str:
        """How mfc names the object in its messages."""
        return f"{self.root.rstrip('/')}/{key}" if self.root.startswith("s3://") else str(Path(self.root) / key)


def artifact_key(root: str, run_id: str, step: str, name: str, flow: str = FLOW) -> str:
    """The data key of artifact ``name`` of the (only) task of ``step``."""
    [record] = task_records(root, flow, run_id, step)
    return data_key(flow, record["artifacts"][name][0])


def task_id_of(root: str, run_id: str, step: str, flow: str = FLOW) -> str:
    return records(root, flow).tasks(run_id, step)[0]


def record_key(run_id: str, step: str, task_id: str, flow: str = FLOW, attempt: int = 0) -> str:
    return f"{flow}/{run_id}/{step}/{task_id}/{attempt}.json"


def read_json(root: str, key: str) -> dict[str, Any]:
    return json.loads((Path(root) / key).read_text())


def as_sha256(damage: Damage, flow: str, address: str) -> str:
    """Store a copy of the object at ``address`` under its sha256 (the form of runs from before
    BLAKE3 addresses), its stored bytes unchanged; returns the sha256 address."""
    import hashlib
    import zlib

    stored = damage.raw(data_key(flow, address))
    payload = zlib.decompress(stored[1:]) if stored[:1] == b"Z" else stored[1:]
    sha = hashlib.sha256(payload).hexdigest()
    damage.write(data_key(flow, sha), stored)
    return sha


def make_sha256_run(root: str, flow: str, run_id: str) -> None:
    """Rewrite a local run as a run from before BLAKE3 addresses: every object its task records
    name is stored under its sha256 (the b3 copy removed) and the records name that."""
    damage = Damage(root)
    seen: dict[str, str] = {}

    def old(address: str) -> str:
        if address not in seen:
            seen[address] = as_sha256(damage, flow, address)
        return seen[address]

    for path in sorted((Path(root) / flow / run_id).glob("*/*/*.json")):
        record = json.loads(path.read_text())
        if "artifacts" not in record:
            continue
        for ref in record["artifacts"].values():
            ref[0] = old(ref[0])
        for frame in record.get("foreach_stack") or []:
            frame["input"] = old(frame["input"])
        split = record.get("foreach")
        if split and "split" in split:
            items = json.loads(damage.raw(split["split"]))
            damage.write(split["split"], json.dumps([old(sha) for sha in items], separators=(",", ":")).encode())
            del split["width"]
        path.write_text(json.dumps(record))
    for address in seen:
        damage.delete(data_key(flow, address))
