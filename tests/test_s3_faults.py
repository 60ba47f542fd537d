"""The S3 blob store under faults, against a real moto server: throttling (503 SlowDown) and
dropped connections injected through botocore's ``before-send`` hook, and connections cut mid
transfer by a TCP proxy. Batches, artifacts and whole flow runs must come through with identical
data; faults that do not pass must end in one clear error, not in endless retries."""

from __future__ import annotations

import hashlib
import os
import random
import threading

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.retries.standard import ExponentialBackoff
from moto_server import Proxy
from support import run_flow

from mfc.stores.artifacts import ArtifactStore, data_key
from mfc.stores.metadata import BlobMetadata
from mfc.stores.records import TaskRecords
from mfc.stores.s3 import BlobCorrupt, S3BlobStore, S3Error

MiB = 1024 * 1024
SLOWDOWN = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message></Error>")


@pytest.fixture(autouse=True)
def quick_botocore_backoff(monkeypatch):
    """botocore waits up to 1 s x 2^n before retrying a throttled call, as it should against S3;
    here the waits are 50 times shorter (the retry logic itself is unchanged)."""
    monkeypatch.setattr(ExponentialBackoff, "_DEFAULT_BACKOFF_CONFIG",
                        {"throttling_base_scale": 0.02, "non_throttling_base_scale": 0.001})


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object):
        yield self._body

    def read(self, *_: object) -> bytes:
        body, self._body = self._body, b""
        return body


class Faults:
    """A ``before-send`` handler that answers ``slowdown`` of the requests with 503 SlowDown and
    drops ``drop`` of them (ConnectionClosedError) before they reach the server."""

    def __init__(self, slowdown: float = 0.2, drop: float = 0.0, seed: int = 7) -> None:
        self.slowdown = slowdown
        self.drop = drop
        self.requests = self.slowdowns = self.drops = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, request, **_: object):
        with self._lock:
            self.requests += 1
            draw = self._rng.random()
            if draw < self.slowdown:
                self.slowdowns += 1
            elif draw < self.slowdown + self.drop:
                self.drops += 1
        if draw < self.slowdown:
            return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, _Raw(SLOWDOWN))
        if draw < self.slowdown + self.drop:
            raise ConnectionClosedError(endpoint_url=request.url)
        return None


def faulty_store(moto, faults: Faults, bucket: str | None = None, **store_args) -> S3BlobStore:
    retries = store_args.pop("botocore_attempts", 4)
    client = moto.client(retries={"mode": "standard", "total_max_attempts": retries})
    client.meta.events.register("before-send.s3", faults)
    store_args.setdefault("retry_wait_max", 0.2)
    return S3BlobStore(f"s3://{bucket or moto.new_bucket()}/faults", client=client, **store_args)


def values(count: int) -> list[object]:
    rng = random.Random(count)
    out: list[object] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            out.append({"i": i, "items": list(range(i))})
        elif kind == 1:
            out.append(f"text {i} " * rng.randint(100, 2000))  # compressible
        elif kind == 2:
            out.append(rng.randbytes(rng.randint(1, 100_000)))
        else:
            out.append(float(i) / 7)
    return out


@pytest.mark.slow
def test_batches_survive_20_percent_slowdowns(moto):
    faults = Faults(slowdown=0.2)
    store = faulty_store(moto, faults, workers=16)
    items = {f"batch/{i:04d}": os.urandom(1000 + i) for i in range(300)}
    payloads = [os.urandom(100 + i) for i in range(50)]
    items.update({data_key("F", hashlib.sha256(p).hexdigest()): b"R" + p for p in payloads})
    store.put_many(items)
    keys = [*items, "batch/missing"]
    assert store.exists_many(keys) == set(items)
    assert store.get_many(keys) == items
    assert sorted(store.list("batch/")) == sorted(k.split("/")[1] for k in items if k.startswith("batch/"))
    assert faults.slowdowns > 50, vars(faults)


@pytest.mark.slow
def test_artifact_store_of_200_items_survives_20_percent_slowdowns(moto):
    faults = Faults(slowdown=0.2, seed=11)
    bucket = moto.new_bucket()
    saved = values(200)
    writer = ArtifactStore(faulty_store(moto, faults, bucket), "Flow")
    refs = [writer.save(value, f"v{i}", "step") for i, value in enumerate(saved)]
    reader = ArtifactStore(faulty_store(moto, faults, bucket), "Flow")  # another process, nothing cached
    assert [reader.load(ref.sha) for ref in refs] == saved
    for ref in refs[:20]:
        assert reader.exists(ref.sha)
    assert faults.slowdowns > 100, vars(faults)


@pytest.mark.slow
def test_tenacity_alone_retries_slowdowns_and_dropped_connections(moto):
    # botocore's own retries off: every fault reaches the store's retry loop
    faults = Faults(slowdown=0.2, drop=0.1, seed=3)
    store = faulty_store(moto, faults, botocore_attempts=1, retry_attempts=12, retry_wait_max=0.05)
    items = {f"t/{i}": os.urandom(500) for i in range(150)}
    store.put_many(items)
    assert store.get_many(items) == items
    assert store.exists_many(items) == set(items)
    artifacts = ArtifactStore(store, "Flow")
    saved = values(40)
    refs = [artifacts.save(v) for v in saved]
    fresh = ArtifactStore(faulty_store(moto, faults, store.bucket, botocore_attempts=1, retry_attempts=12,
                                       retry_wait_max=0.05), "Flow")
    assert [fresh.load(r.sha) for r in refs] == saved
    assert faults.drops > 20 and faults.slowdowns > 40, vars(faults)


def test_endless_throttling_ends_in_one_clear_error(moto):
    faults = Faults(slowdown=1.0)
    store = faulty_store(moto, faults, botocore_attempts=3, retry_attempts=4, retry_wait_max=0.01)
    with pytest.raises(S3Error, match=r"S3 kept failing for s3://.*/faults/k: SlowDown"):
        store.put_bytes("k", b"x")
    assert faults.requests == 3 * 4


def test_put_new_whose_answer_was_lost(moto):
    """The first conditional PUT reaches S3 but its answer is lost; the retry gets 412. The
    object there is ours (same bytes), so put_new still reports that it created it."""
    bucket = moto.new_bucket()
    plain = moto.client()
    client = moto.client(retries={"mode": "standard", "total_max_attempts": 3})
    store = S3BlobStore(f"s3://{bucket}/lost", client=client)
    state = {"sent": 0, "other": None}

    def deliver_then_drop(request, **_):
        if request.headers.get("If-None-Match") in ("*", b"*") and state["sent"] == 0:
            state["sent"] += 1
            body = state["other"] if state["other"] is not None else request.body
            plain.put_object(Bucket=bucket, Key=request.url.split(f"/{bucket}/", 1)[1], Body=body)
            raise ConnectionClosedError(endpoint_url=request.url)
        return None

    client.meta.events.register("before-send.s3.PutObject", deliver_then_drop)
    assert store.put_new("F/1/_run.json", b"mine") is True
    assert state["sent"] == 1
    assert store.get_bytes("F/1/_run.json") == b"mine"
    # when another writer's bytes got there first, the retry's 412 means "not created"
    state.update(sent=0, other=b"someone else's")
    assert store.put_new("F/2/_run.json", b"mine") is False
    assert state["sent"] == 1
    assert store.get_bytes("F/2/_run.json") == b"someone else's"


def test_connections_cut_mid_transfer(moto):
    with Proxy(moto.port, cut_rate=0.3, cut_max=6 * MiB, seed=5) as proxy:
        client = moto.client(endpoint=proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 5})
        store = S3BlobStore(f"s3://{moto.new_bucket()}/cuts", client=client, multipart_threshold=8 * MiB,
                            part_size=2 * MiB, retry_wait_max=0.1)
        artifacts = ArtifactStore(store, "Flow")
        big = os.urandom(20 * MiB)
        ref = artifacts.save(big)  # spooled to a file, multipart upload
        small = [os.urandom(200_000) for _ in range(10)]
        small_refs = [artifacts.save(v) for v in small]
        for parallel in (True, False, True):
            reader = ArtifactStore(S3BlobStore(store.root, client=client, part_size=2 * MiB, retry_wait_max=0.1,
                                               parallel_reads=parallel), "Flow")
            assert reader.load(ref.sha) == big  # streamed: ranged parts or resumed bodies
        assert [reader.load(r.sha) for r in small_refs] == small
        store.put_bytes("plain/log", big[:5 * MiB])  # not content-addressed: one GET, resumed by range
        with store.open("plain/log") as fh:
            assert fh.read() == big[:5 * MiB]
        assert proxy.cuts >= 5, (proxy.cuts, proxy.connections)


def test_corruption_in_transit_is_never_returned(moto):
    bucket = moto.new_bucket()
    writer = S3BlobStore(f"s3://{bucket}/flip", client=moto.client())
    artifacts = ArtifactStore(writer, "Flow")
    small = artifacts.save_bytes(os.urandom(5000))
    large = artifacts.save(os.urandom(10 * MiB))
    writer.put_bytes("plain/record.json", b'{"k": 1}' * 100)
    with Proxy(moto.port, corrupt_rate=1.0, corrupt_offset=100) as proxy:
        # botocore checks a response's checksum only when asked (ChecksumMode), as mfc's own client
        client = moto.client(endpoint=proxy.endpoint, response_checksum_validation="when_required")
        for parallel in (False, True):
            reader = ArtifactStore(S3BlobStore(writer.root, client=client, part_size=2 * MiB,
                                               parallel_reads=parallel), "Flow")
            with pytest.raises(BlobCorrupt, match=f"data {small[:12]} .* is corrupt"):
                reader.load_bytes(small)
            with pytest.raises(BlobCorrupt, match=f"data {large.sha[:12]} .* is corrupt"):
                reader.load(large.sha)
        with pytest.raises(BlobCorrupt, match="plain/record.json was corrupted in transit"):
            S3BlobStore(writer.root, client=client).get_bytes("plain/record.json")
        assert proxy.corrupted >= 6


@pytest.mark.slow
def test_flow_survives_cut_connections(moto, tmp_path):
    """A whole run (orchestrator and task processes) on an S3 endpoint that drops connections."""
    bucket = moto.new_bucket()
    root = f"s3://{bucket}/flaky"
    flow = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "branch_foreach.py")
    with Proxy(moto.port, cut_rate=0.15, cut_max=3000, seed=9) as proxy:
        env = {**moto.env(), "MFC_DATASTORE_ROOT": root, "MFC_S3_ENDPOINT_URL": proxy.endpoint}
        _, run_id = run_flow(tmp_path / "ds", flow, env=env, timeout=180)
        assert proxy.cuts > 0
    blobs = S3BlobStore(root, client=moto.client())
    assert BlobMetadata(blobs).run("BranchForeachFlow", run_id)["status"] == "succeeded"
    records = TaskRecords(blobs, "BranchForeachFlow")
    end = records.latest(run_id, "end", records.tasks(run_id, "end")[0])
    artifacts = ArtifactStore(blobs, "BranchForeachFlow")
    assert artifacts.load(end["artifacts"]["total_of_squares"][0]) == 220
