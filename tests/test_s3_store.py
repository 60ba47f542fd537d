"""The S3 blob store against a real moto server over HTTP: the BlobStore contract (shared with
the local backend), artifacts on S3, integrity checks, clear errors, and a flow run end to end."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
import tracemalloc

import pytest
from moto_server import MotoServer
from support import mfc, run_flow

from mfc.aws import is_local_endpoint as is_local
from mfc.exceptions import MfcError
from mfc.stores.artifacts import ArtifactStore, data_key
from mfc.stores.blob import BlobNotFound, open_blob_store
from mfc.stores.local import LocalBlobStore
from mfc.stores.metadata import BlobMetadata
from mfc.stores.records import TaskRecords
from mfc.stores.s3 import S3BlobStore, S3Error, parse_root
from mfc.stores.s3_transfer import BlobCorrupt

MiB = 1024 * 1024
EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


@pytest.fixture
def s3_store(moto):
    store = S3BlobStore(f"s3://{moto.new_bucket()}/some/prefix/", client=moto.client())
    yield store
    store.close()


@pytest.fixture(params=["local", "s3"])
def blobs(request, tmp_path):
    """Each backend in turn, so both keep the same contract."""
    if request.param == "local":
        return LocalBlobStore(str(tmp_path / "ds"))
    return request.getfixturevalue("s3_store")


# -- the BlobStore contract, for both backends ----------------------------------------------------

def test_put_get_overwrite_and_empty(blobs):
    blobs.put_bytes("a/b/c.json", b"one")
    assert blobs.get_bytes("a/b/c.json") == b"one"
    blobs.put_bytes("a/b/c.json", b"two")
    assert blobs.get_bytes("a/b/c.json") == b"two"
    blobs.put_bytes("a/empty", b"")
    assert blobs.get_bytes("a/empty") == b""
    with blobs.open("a/empty") as fh:
        assert fh.read() == b""


def test_missing_keys(blobs):
    with pytest.raises(BlobNotFound):
        blobs.get_bytes("no/such/key")
    with pytest.raises(BlobNotFound):
        blobs.open("no/such/key")
    assert not blobs.exists("no/such/key")
    blobs.delete("no/such/key")  # deleting what is not there is fine


def test_put_new_creates_once(blobs):
    assert blobs.put_new("runs/1/_run.json", b"first") is True
    assert blobs.put_new("runs/1/_run.json", b"second") is False
    assert blobs.get_bytes("runs/1/_run.json") == b"first"


def test_put_file_consumes_the_file(blobs):
    path = os.path.join(blobs.staging_dir(), "spool-test")
    with open(path, "wb") as fh:
        fh.write(b"spooled bytes")
    blobs.put_file("x/spooled", path)
    assert not os.path.exists(path)
    assert blobs.get_bytes("x/spooled") == b"spooled bytes"


def test_open_streams(blobs):
    lines = b"".join(b"line %d\n" % i for i in range(5000))
    blobs.put_bytes("log/stdout", lines)
    with blobs.open("log/stdout") as fh:
        assert fh.readline() == b"line 0\n"
        assert fh.read(7) == b"line 1\n"
        assert fh.read() == lines[14:]
    value = {"numbers": list(range(1000)), "blob": os.urandom(100_000)}
    blobs.put_bytes("p", pickle.dumps(value, protocol=5))
    with blobs.open("p") as fh:
        assert pickle.load(fh) == value


def test_list_children(blobs):
    for key in ("F/1/start/1/0.json", "F/1/start/2/0.json", "F/1/_run.json", "F/2/_run.json", "G/x"):
        blobs.put_bytes(key, b"{}")
    assert sorted(blobs.list("")) == ["F", "G"]
    assert sorted(blobs.list("F/")) == ["1", "2"]
    assert sorted(blobs.list("F/1/")) == ["_run.json", "start"]
    assert sorted(blobs.list("F/1")) == ["_run.json", "start"]  # the trailing slash is optional
    assert sorted(blobs.list("F/1/start/")) == ["1", "2"]
    assert blobs.list("nothing/here/") == []


def test_delete(blobs):
    blobs.put_bytes("d/k", b"x")
    blobs.delete("d/k")
    assert not blobs.exists("d/k")
    with pytest.raises(BlobNotFound):
        blobs.get_bytes("d/k")


def test_batches(blobs):
    items = {f"batch/{i}": os.urandom(64) for i in range(40)}
    blobs.put_many(items)
    wanted = [*items, "batch/missing"]
    assert blobs.exists_many(wanted) == set(items)
    assert blobs.get_many(wanted) == items


def test_artifact_round_trips(blobs):
    store = ArtifactStore(blobs, "Flow")
    values = [None, 7, "text", {"k": [1, 2, 3]}, "z" * 50_000, os.urandom(20_000)]
    refs = [store.save(v, "v") for v in values]
    assert [store.load(r.sha) for r in refs] == values
    stored = blobs.get_bytes(data_key("Flow", refs[4].sha))
    assert stored[:1] == b"Z"  # the compressible one is compressed
    assert store.load_bytes(store.save_bytes(b"package bytes")) == b"package bytes"


# -- S3 only --------------------------------------------------------------------------------------

def test_root_parsing():
    assert parse_root("s3://bucket") == ("bucket", "")
    assert parse_root("s3://bucket/") == ("bucket", "")
    assert parse_root("s3://bucket/a/b") == ("bucket", "a/b/")
    assert parse_root("s3://bucket//a//b//") == ("bucket", "a/b/")
    for bad in ("s3://", "s3://Upper/x", "s3://ab", "s3://under_score/x"):
        with pytest.raises(MfcError, match="bucket name"):
            parse_root(bad)


def test_transfers_split_only_for_remote_endpoints(moto):
    assert is_local("http://127.0.0.1:5000") and is_local("http://localhost:9000")
    assert not is_local("https://s3.us-east-1.amazonaws.com") and not is_local(None)
    local = S3BlobStore("s3://bucket/x", client=moto.client())
    remote = S3BlobStore("s3://bucket/x", client=moto.client(endpoint="https://s3.us-east-1.amazonaws.com"))
    assert local._parallel_reads() is False and remote._parallel_reads() is True
    assert S3BlobStore("s3://bucket/x", client=moto.client(), parallel_reads=True)._parallel_reads() is True


def test_keys_live_under_the_prefix(moto):
    bucket = moto.new_bucket()
    client = moto.client()
    for root, key in ((f"s3://{bucket}", "k1"), (f"s3://{bucket}/p/q/", "p/q/k2"), (f"s3://{bucket}/p", "p/k3")):
        store = S3BlobStore(root, client=client)
        store.put_bytes(key.rsplit("/", 1)[-1], b"v")
        assert store.local_path("anything") is None
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v"
    assert S3BlobStore(f"s3://{bucket}/p/", client=client).root == f"s3://{bucket}/p"


def test_open_blob_store_uses_mfc_config(moto, monkeypatch):
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MFC_CONFIG", "/nonexistent/mfc-config.toml")
    bucket = moto.new_bucket()
    store = open_blob_store(f"s3://{bucket}/via/config")
    assert isinstance(store, S3BlobStore)
    store.put_bytes("k", b"through the configured endpoint")
    assert moto.client().get_object(Bucket=bucket, Key="via/config/k")["Body"].read() == b"through the configured endpoint"


def test_a_forked_child_gets_its_own_client(moto, monkeypatch):
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MFC_CONFIG", "/nonexistent/mfc-config.toml")
    store = open_blob_store(f"s3://{moto.new_bucket()}/fork")  # its settings from the environment
    assert isinstance(store, S3BlobStore)
    store.put_many({"parent/a": b"1", "parent/b": b"2"})  # client, pools and connections exist now
    parent_client = store.client
    pid = os.fork()
    if pid == 0:  # the child: a fresh client and pools, never the parent's sockets
        ok = False
        try:
            ok = store.client is not parent_client and store.get_many(["parent/a", "parent/b"]) == {
                "parent/a": b"1", "parent/b": b"2"}
            store.put_bytes("child/done", b"yes")
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.client is parent_client and store.get_bytes("child/done") == b"yes"


@pytest.mark.slow
def test_list_paginates_past_1000(s3_store):
    items = {f"many/{i:05d}": b"" for i in range(1010)}
    items.update({f"many/dir{i}/x": b"" for i in range(20)})
    s3_store.put_many(items)
    names = s3_store.list("many/")
    assert len(names) == 1030
    assert set(names) == {k.split("/")[1] for k in items}


def test_put_new_has_one_winner(moto):
    bucket = moto.new_bucket()
    stores = [S3BlobStore(f"s3://{bucket}/race", client=moto.client()) for _ in range(12)]
    for round_ in range(5):
        key = f"F/{round_}/_run.json"
        results: dict[int, bool] = {}
        barrier = threading.Barrier(len(stores))

        def claim(i: int, key: str, barrier: threading.Barrier, results: dict[int, bool]) -> None:
            barrier.wait()
            results[i] = stores[i].put_new(key, b"writer %d" % i)

        threads = [threading.Thread(target=claim, args=(i, key, barrier, results)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, won in results.items() if won]
        assert len(winners) == 1, results
        assert stores[0].get_bytes(key) == b"writer %d" % winners[0]


def test_put_new_without_conditional_writes(s3_store):
    s3_store.conditional_writes = False
    assert s3_store.put_new("nc/k", b"1") is True
    assert s3_store.put_new("nc/k", b"2") is False
    assert s3_store.get_bytes("nc/k") == b"1"


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [True, False])
def test_multipart_upload_and_ranged_reads(moto, parallel):
    store = S3BlobStore(f"s3://{moto.new_bucket()}/mp", client=moto.client(), multipart_threshold=8 * MiB,
                        part_size=2 * MiB, parallel_reads=parallel)
    payload = os.urandom(40 * MiB + 123)
    data = b"R" + payload
    key = data_key("Flow", hashlib.sha256(payload).hexdigest())
    for name in (key, "plain/big"):  # content-addressed (checked, maybe parallel), and not
        fd, path = tempfile.mkstemp(dir=store.staging_dir(), prefix="big-upload-")  # the staging dir is shared
        os.close(fd)
        with open(path, "wb") as fh:
            fh.write(data)
        store.put_file(name, path)
        assert not os.path.exists(path)
        head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + name)
        assert "-" in head["ETag"]  # a multipart upload's ETag
        assert store.get_bytes(name) == data
        with store.open(name) as fh:
            assert fh.read(10) == data[:10]
            assert fh.read() == data[10:]
    assert ArtifactStore(store, "Flow").load_bytes(key[-64:]) == payload


@pytest.mark.parametrize("parallel", [True, False])
def test_50mb_artifact_streams_without_a_second_copy(moto, parallel):
    store = S3BlobStore(f"s3://{moto.new_bucket()}/big", client=moto.client(), multipart_threshold=16 * MiB,
                        read_window=2, parallel_reads=parallel)
    artifacts = ArtifactStore(store, "Flow")
    before = set(os.listdir(store.staging_dir()))

    def new_spool_files() -> list[str]:
        return [n for n in set(os.listdir(store.staging_dir())) - before if n.startswith(".tmp-")]

    value = os.urandom(50 * MiB)
    ref = artifacts.save(value, "blob")
    assert ref.size > 50 * MiB
    assert not new_spool_files(), "the spool file was uploaded and removed"
    tracemalloc.start()
    try:
        loaded = artifacts.load(ref.sha)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded == value
    # the value itself plus the parts in flight (the window, the one being read, one spare),
    # never two copies of 50 MB
    assert peak < 50 * MiB + (store.read_window + 2) * store.part_size, peak / MiB
    assert peak < 1.75 * 50 * MiB


def test_content_addressed_objects_are_written_once(moto):
    client = moto.client()
    puts = []
    client.meta.events.register("before-send.s3.PutObject", lambda request, **_: puts.append(request.url))
    store = S3BlobStore(f"s3://{moto.new_bucket()}/dedup", client=client)
    artifacts = ArtifactStore(store, "Flow")
    first = artifacts.save(list(range(10_000)))
    again = artifacts.save(list(range(10_000)))
    assert first == again and len(puts) == 1
    # a fresh store (another process) does not rewrite it either, in a batch or alone
    other = S3BlobStore(store.root, client=client)
    stored = other.get_bytes(data_key("Flow", first.sha))
    other2 = S3BlobStore(store.root, client=client)
    other2.put_many({data_key("Flow", first.sha): stored})
    assert other2.put_new(data_key("Flow", first.sha), stored) is False
    assert len(puts) == 2  # the conditional put of put_many, refused by S3: nothing rewritten
    assert client.head_object(Bucket=store.bucket, Key=store.prefix + data_key("Flow", first.sha))


@pytest.mark.parametrize("value", [os.urandom(3000), b"compressible " * 1000, os.urandom(9 * MiB)],
                         ids=["raw", "zlib", "large-checked-in-background"])
def test_corrupt_data_is_detected(s3_store, value):
    artifacts = ArtifactStore(s3_store, "Flow")
    sha = artifacts.save_bytes(value)
    key = data_key("Flow", sha)
    stored = s3_store.get_bytes(key)
    assert stored[:1] == (b"R" if value[:1] != b"c" else b"Z")
    tampered = stored[:-1] + bytes([stored[-1] ^ 1])
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=s3_store.prefix + key, Body=tampered)
    fresh = S3BlobStore(s3_store.root, client=s3_store.client)
    with pytest.raises(BlobCorrupt, match=f"data {sha[:12]} .* is corrupt"):
        ArtifactStore(fresh, "Flow").load_bytes(sha)
    with pytest.raises(BlobCorrupt):
        with fresh.open(key) as fh:
            fh.read()
    assert S3BlobStore(s3_store.root, client=s3_store.client, verify_data=False).get_bytes(key) == tampered


def test_corrupt_pickle_stream_fails_before_load_returns(s3_store):
    artifacts = ArtifactStore(s3_store, "Flow")
    value = os.urandom(300_000)
    ref = artifacts.save(value)
    key = data_key("Flow", ref.sha)
    stored = bytearray(s3_store.get_bytes(key))
    stored[200_000] ^= 0xFF  # inside the bytes payload: pickle itself would not notice
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=s3_store.prefix + key, Body=bytes(stored))
    with pytest.raises(BlobCorrupt):
        ArtifactStore(S3BlobStore(s3_store.root, client=s3_store.client), "Flow").load(ref.sha)


def test_missing_bucket_is_one_clear_error(moto):
    requests = []
    client = moto.client()
    client.meta.events.register("before-send.s3", lambda request, **_: requests.append(request.method))
    store = S3BlobStore("s3://no-such-bucket-here/prefix", client=client)
    for call in (lambda: store.exists("k"), lambda: store.get_bytes("k"), lambda: store.put_bytes("k", b"x"),
                 lambda: store.list(""), lambda: store.open("k"), lambda: store.put_new("k", b"x")):
        with pytest.raises(S3Error) as info:
            call()
        message = str(info.value)
        assert "S3 bucket 'no-such-bucket-here' does not exist" in message
        assert "s3://no-such-bucket-here/prefix" in message and "\n" not in message
    assert len(requests) <= 8  # answered at once, not retried


def test_access_denied_is_one_clear_error():
    with MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as server:
        admin = server.client()
        admin.create_bucket(Bucket="locked")
        iam = server.client("iam")
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        import boto3

        denied = boto3.session.Session().client(
            "s3", endpoint_url=server.endpoint, region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        unknown = server.client()  # "testing" is not a key this server knows once IAM is enforced
        for client in (denied, unknown):
            store = S3BlobStore("s3://locked/runs", client=client)
            for call in (lambda s=store: s.put_bytes("k", b"x"), lambda s=store: s.get_bytes("k"),
                         lambda s=store: s.exists("k"), lambda s=store: s.list("")):
                with pytest.raises(S3Error, match=r"access denied to s3://locked/runs.*check credentials/profile"):
                    call()


def test_no_credentials_is_one_clear_error(monkeypatch, tmp_path):
    # not a localhost endpoint: mfc.aws lends a sandbox on this machine dummy credentials;
    # signing fails before any connection is tried
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MFC_S3_ENDPOINT_URL", "http://s3.mfc-test.invalid")
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "none.toml"))
    store = S3BlobStore("s3://some-bucket/x")
    with pytest.raises(S3Error, match="no usable AWS credentials .*AWS_ACCESS_KEY_ID.*AWS_PROFILE"):
        store.put_bytes("k", b"x")


# -- a real flow on the S3 datastore --------------------------------------------------------------

@pytest.mark.slow
def test_flow_runs_end_to_end_on_s3(moto, tmp_path):
    bucket = moto.new_bucket()
    root = f"s3://{bucket}/team/ds"
    flow = os.path.join(EXAMPLES, "branch_foreach.py")
    id_root = tmp_path / "ds"  # run_flow writes its run-id file beside this (unused) path
    proc, run_id = run_flow(id_root, flow, "--scale", "3", extra=("--datastore", "s3", "--datastore-root", root),
                            env=moto.env(), timeout=120)
    assert run_id and "succeeded" in proc.stdout

    blobs = S3BlobStore(root, client=moto.client())
    info = BlobMetadata(blobs).run("BranchForeachFlow", run_id)
    assert info["status"] == "succeeded"
    records = TaskRecords(blobs, "BranchForeachFlow")
    assert records.steps(run_id) == sorted(["start", "square", "gather", "total", "biggest", "report", "end"])
    artifacts = ArtifactStore(blobs, "BranchForeachFlow")
    end = records.latest(run_id, "end", records.tasks(run_id, "end")[0])
    loaded = {name: artifacts.load(ref[0]) for name, ref in end["artifacts"].items() if not name.startswith("_")}
    assert loaded["squares"] == [9, 36, 81, 144, 225]
    assert loaded["total_of_squares"] == 495 and loaded["largest_square"] == 225
    squares = records.tasks(run_id, "square")
    outputs = sorted(records.read_log(run_id, "square", t, 0, "stdout") for t in squares)
    assert outputs == sorted(b"%d^2 = %d\n" % (n, n * n) for n in (3, 6, 9, 12, 15))
    logs = mfc(None, "logs", f"BranchForeachFlow/{run_id}/end", env={**moto.env(), "MFC_DATASTORE_ROOT": root})
    assert logs.returncode == 0 and "total=495" in logs.stdout
    leftovers = [n for n in os.listdir(blobs.staging_dir()) if n.startswith(f"BranchForeachFlow_{run_id}")]
    assert leftovers == []  # every staged log was uploaded and removed


def test_flow_on_a_missing_bucket_fails_with_one_line(moto, tmp_path):
    flow = os.path.join(EXAMPLES, "branch_foreach.py")
    env = {**moto.env(), "MFC_DATASTORE_ROOT": "s3://bucket-that-is-not-there/ds"}
    proc = mfc(None, "run", flow, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "S3 bucket 'bucket-that-is-not-there' does not exist" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr



# -- task records on both backends: create-only attempts, final pointers, split files ------------
def test_task_records_split_files_and_final_pointers(blobs):
    from mfc.stores.taskrecord import Ending, TaskRecord

    records = TaskRecords(blobs, "F")
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(25)]
    key = records.split_key("1", "start", "start", 0)
    records.write_split(key, shas)
    assert [records.split_item(key, i) for i in (0, 7, 24)] == [shas[0], shas[7], shas[24]]
    assert blobs.get_range(key, 1, 66) == f'"{shas[0]}"'.encode()
    assert blobs.get_range(key, 10_000, 10) == b""
    with pytest.raises(MfcError, match="no entry 25"):
        records.split_item(key, 25)
    with pytest.raises(BlobNotFound):
        blobs.get_range("F/none.json", 0, 4)

    first = TaskRecord("F/1/body/body-3", 1, Ending.OK, artifacts={"x": [shas[3], 1]})
    assert records.write("1", "body", "body-3", 1, first)
    assert not records.write("1", "body", "body-3", 1, TaskRecord("F/1/body/body-3", 1, Ending.DIED))
    assert records.read_task("1", "body", "body-3", 1).ending is Ending.OK
    [latest] = records.final_many("1", [("body", "body-3", None)])  # no pointer yet: the latest finished attempt
    assert latest["attempt"] == 1
    assert records.write_final("1", "body", "body-3", 1) and not records.write_final("1", "body", "body-3", 0)
    [found] = records.final_many("1", [("body", "body-3", None)])
    assert found["artifacts"] == {"x": [shas[3], 1]} and found["ending"] == "ok"


def test_head_and_list_objects_tell_sizes_and_kinds(s3_store):
    s3_store.put_bytes("dir/a", b"12345")
    s3_store.put_bytes("dir/sub/b", b"xy")
    info = s3_store.head("dir/a")
    assert info is not None and (info.key, info.size, info.etag is not None) == ("dir/a", 5, True)
    assert s3_store.head("dir/nope") is None
    children = {i.key: i.size for i in s3_store.list_objects("dir")}
    assert children == {"dir/a": 5, "dir/sub": None}
    assert {i.key: i.size for i in s3_store.list_objects("dir/", recursive=True)} == {"dir/a": 5, "dir/sub/b": 2}
    assert sorted(s3_store.list("dir")) == ["a", "sub"]


@pytest.mark.parametrize("parallel", [False, True])
def test_get_files_streams_objects_into_files(moto, tmp_path, parallel):
    store = S3BlobStore(f"s3://{moto.new_bucket()}/p", client=moto.client(), part_size=256 * 1024,
                        parallel_reads=parallel)
    # content-addressed and checked as it streams; read as parallel ranges when asked
    key = data_key("F", ArtifactStore(store, "F").save_bytes(os.urandom(3 * MiB + 17)))
    big = store.get_bytes(key)
    store.put_bytes("small", b"tiny")
    got = store.get_files([key, "small", "absent", key], str(tmp_path))
    assert set(got) == {key, "small"}
    assert open(got[key][0], "rb").read() == big and got[key][1].size == len(big)
    assert open(got["small"][0], "rb").read() == b"tiny" and got["small"][1].etag
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p, _ in got.values())
    store.close()


def test_get_files_leaves_no_file_for_a_corrupt_object(s3_store, tmp_path):
    key = data_key("F", ArtifactStore(s3_store, "F").save_bytes(os.urandom(5000)))
    s3_store.put_bytes(key, b"R" + os.urandom(5000))
    with pytest.raises(BlobCorrupt):
        s3_store.get_files([key], str(tmp_path))
    assert os.listdir(tmp_path) == []
