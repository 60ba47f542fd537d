"""Stores own storage: create-only writes on SSE-KMS buckets, stores built from the settings
they are given, and no datastore key built outside mfc/stores."""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path

import botocore.exceptions as bex
from moto_server import REGION

from mfc.stores.blob import open_blob_store, open_configured_store
from mfc.stores.metadata import BlobMetadata
from mfc.stores.s3 import S3BlobStore
from mfc.stores.settings import S3Settings

MFC = Path(__file__).resolve().parent.parent / "mfc"


# -- create-only writes on SSE-KMS buckets --------------------------------------------------------

def kms_bucket(moto) -> str:
    key_id = moto.client("kms").create_key(Description="mfc test")["KeyMetadata"]["KeyId"]
    bucket = moto.new_bucket("mfc-kms")
    moto.client().put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]})
    return bucket


def kms_client(moto, lose_first_put: bool):
    """A client of the moto server that sees what SSE-KMS gives on S3: ETags that are no MD5 of
    the content; with ``lose_first_put``, the answer to the first conditional put is lost after
    S3 stored the object (the client retries it)."""
    client = moto.client(retries={"mode": "standard", "total_max_attempts": 1})
    lost: list[bool] = []
    real: dict[str, str] = {}  # the ETags handed out -> moto's own (which are MD5s)

    def not_md5(parsed, **_):
        if isinstance(parsed, dict) and "ETag" in parsed:
            fake = '"' + hashlib.sha256(parsed["ETag"].encode()).hexdigest()[:32] + '"'
            real[fake] = parsed["ETag"]
            parsed["ETag"] = fake

    def lose(http_response, parsed, context, **_):
        if lose_first_put and not lost and http_response.status_code == 200 and context.get("conditional"):
            lost.append(True)
            raise bex.ConnectionClosedError(endpoint_url="lost answer")

    def mark(params, context, **_):
        context["conditional"] = "IfNoneMatch" in params
        if "IfMatch" in params:  # S3 compares the ETag it handed out
            params["IfMatch"] = real.get(params["IfMatch"], params["IfMatch"])

    client.meta.events.register("provide-client-params.s3.PutObject", mark)
    client.meta.events.register("provide-client-params.s3.GetObject", mark)
    client.meta.events.register("after-call.s3", not_md5)
    client.meta.events.register("after-call.s3.PutObject", lose)
    return client, lost


def test_objects_on_the_kms_bucket_are_kms_encrypted_with_non_md5_etags(moto):
    bucket = kms_bucket(moto)
    client, _ = kms_client(moto, lose_first_put=False)
    client.put_object(Bucket=bucket, Key="probe", Body=b"x")
    head = client.head_object(Bucket=bucket, Key="probe")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ETag"] != f'"{hashlib.md5(b"x").hexdigest()}"'


def test_create_only_writes_work_on_an_sse_kms_bucket(moto):
    client, _ = kms_client(moto, lose_first_put=False)
    store = S3BlobStore(f"s3://{kms_bucket(moto)}/kms", client=client, retry_wait_max=0.01)
    assert store.put_new("F/1/_run.json", b"first") is True
    assert store.put_new("F/1/_run.json", b"second") is False
    assert store.get_bytes("F/1/_run.json") == b"first"
    assert store.put_if("F/1/_tags.json", b"v1", None) is True
    _, version = store.get_versioned("F/1/_tags.json")
    assert store.put_if("F/1/_tags.json", b"v2", version) is True
    assert store.put_if("F/1/_tags.json", b"v3", version) is False  # stale version refused
    metadata = BlobMetadata(store)
    run_id = metadata.create_run("F", {"user": "me"})
    assert metadata.run("F", run_id)["user"] == "me"


def test_create_run_whose_answer_was_lost_on_sse_kms_leaves_no_phantom_run(moto):
    """The first put is stored but its answer lost; the retry is refused (412). The store must
    tell that the object is its own without comparing an MD5 ETag (which SSE-KMS objects lack),
    or create_run claims a second run id and the first stays behind as a phantom run."""
    client, lost = kms_client(moto, lose_first_put=True)
    store = S3BlobStore(f"s3://{kms_bucket(moto)}/kms", client=client, retry_wait_max=0.01)
    metadata = BlobMetadata(store)
    run_id = metadata.create_run("F", {"user": "me"})
    assert lost == [True]
    assert metadata.run_ids("F") == [run_id]
    assert metadata.run("F", run_id)["user"] == "me"


def test_a_refused_create_after_a_lost_answer_is_still_refused_when_someone_else_won(moto):
    client, lost = kms_client(moto, lose_first_put=True)
    store = S3BlobStore(f"s3://{kms_bucket(moto)}/kms", client=client, retry_wait_max=0.01)
    other = S3BlobStore(store.root, client=moto.client())
    assert other.put_new("F/2/_run.json", b"theirs") is True
    assert store.put_new("F/2/_run.json", b"mine") is False
    assert store.get_bytes("F/2/_run.json") == b"theirs" and not lost  # refused at once: no answer lost


# -- stores take their settings -------------------------------------------------------------------

def no_config(monkeypatch):
    import mfc.config

    def refuse(*args, **kwargs):
        raise AssertionError("a store built a Config")

    monkeypatch.setattr(mfc.config.Config, "__init__", refuse)


def test_an_s3_store_is_built_from_the_settings_it_is_given(moto, monkeypatch):
    for name in [n for n in os.environ if n.startswith(("MFC_", "AWS_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    root = f"s3://{moto.new_bucket()}/settings"
    settings = S3Settings(region=REGION, endpoint_url=moto.endpoint, connect_timeout=3, read_timeout=7,
                          request_attempts=2, workers=5)
    no_config(monkeypatch)
    store = open_blob_store(root, settings)
    store.put_bytes("a/b", b"hello")
    assert moto.client().get_object(Bucket=store.bucket, Key=store.prefix + "a/b")["Body"].read() == b"hello"
    config = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (3, 7, 2)
    assert store.client.meta.region_name == REGION and store.workers == 5


def test_settings_come_from_the_callers_config_and_the_default_from_the_environment(moto, monkeypatch):
    from mfc.config import Config

    root = f"s3://{moto.new_bucket()}/configured"
    config = Config({"datastore_root": root, "s3_endpoint_url": moto.endpoint, "aws_region": "eu-west-3"},
                    env={"MFC_CONFIG": "/nonexistent/mfc.toml"})
    assert S3Settings.from_config(config) == S3Settings(region="eu-west-3", endpoint_url=moto.endpoint)
    store = open_configured_store(config)
    assert store.settings.endpoint_url == moto.endpoint and store.settings.region == "eu-west-3"
    monkeypatch.setenv("MFC_S3_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("MFC_CONFIG", "/nonexistent/mfc.toml")
    assert open_blob_store(root).settings.endpoint_url == moto.endpoint  # the default: this process's
    no_config(monkeypatch)
    assert S3BlobStore(root).settings == S3Settings()  # the store itself reads no configuration


# -- no datastore key built outside mfc/stores ----------------------------------------------------

def test_an_oversized_spec_is_stored_beside_its_attempt_and_read_back(moto, monkeypatch, tmp_path):
    from mfc.stores.local import LocalBlobStore
    from mfc.stores.specs import read_spec, store_spec

    text = '{"step": "join", "inputs": ["%s"]}' % ("x" * 100_000)
    local = LocalBlobStore(str(tmp_path / "ds"))
    ref = store_spec(local, "F", "1", "join", "7", 2, text)
    assert ref == "@" + str(tmp_path / "ds" / "F" / "1" / "join" / "7" / "2.spec.json")
    assert read_spec(ref[1:]) == text
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MFC_CONFIG", "/nonexistent/mfc.toml")
    remote = S3BlobStore(f"s3://{moto.new_bucket()}/specs", client=moto.client())
    ref = store_spec(remote, "F", "1", "join", "7", 2, text)
    assert ref == f"@{remote.root}/F/1/join/7/2.spec.json" and read_spec(ref[1:]) == text


def test_a_scratch_lease_is_dropped_through_the_metadata(tmp_path):
    from mfc.runner.lease import measure_refresh

    assert measure_refresh(str(tmp_path / "ds"), beats=3) >= 0
    assert not list((tmp_path / "ds").rglob("_lease.json"))


BLOB_METHODS = {"put_bytes", "put_new", "put_if", "get_versioned", "put_file", "get_bytes", "open", "exists",
                "size", "list", "delete", "delete_many", "exists_many", "put_many", "put_files", "get_many",
                "local_path", "read_log"}
KEY_PIECES = ("/data/", "_run.json", "_status.json", "_lease.json", "_tags.json", ".spec.json")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            found.add(id(body[0].value))
    return found


def key_building(source: str, name: str) -> list[str]:
    """Where ``source`` builds a datastore key: a key-looking string, or a blob store method
    called with a key made on the spot (an f-string, a concatenation)."""
    tree = ast.parse(source, name)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found += [f"{name}:{node.lineno}: {node.value!r}" for piece in KEY_PIECES if piece in node.value]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in BLOB_METHODS:
            receiver = ast.unparse(node.func.value)
            if "blob" in receiver.lower() and any(isinstance(a, (ast.JoinedStr, ast.BinOp)) for a in node.args):
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_key_check_finds_what_it_looks_for():
    assert key_building('blobs.delete(f"{flow}/{run_id}/_lease.json")\n', "x.py")  # both ways
    assert key_building('self.blobs.list(flow + "/" + run_id + "/")\n', "x.py")
    assert key_building('key = f"{flow}/data/{sha[:2]}/{sha}"\n', "x.py")
    assert not key_building('"""Keys: ``<Flow>/data/xx``."""\nblobs.delete(data_key(flow, sha))\n', "x.py")


def test_no_datastore_key_is_built_outside_the_stores():
    found = []
    for package in ("runner", "client", "cli"):
        for path in sorted((MFC / package).rglob("*.py")):
            found += key_building(path.read_text(), str(path.relative_to(MFC)))
    assert found == []
