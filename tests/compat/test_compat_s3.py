"""Metaflow's ``S3`` client on mfc, against a real moto server over HTTP: each method, missing
keys, the download directory's lifetime, clear errors, and ``S3(run=self)`` in a flow step."""

from __future__ import annotations

import os

import pytest
from compat_support import flow_file, mfc_run
from test_compat_sources import rewrite_imports

from mfc import S3, MetaflowS3NotFound, S3NotFound
from mfc.config import Config
from mfc.exceptions import MfcError


@pytest.fixture
def env(moto, monkeypatch):
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MFC_CONFIG", "/nonexistent/mfc-config.toml")
    return moto


@pytest.fixture
def root(env):
    return f"s3://{env.new_bucket()}/some/prefix"


def test_put_get_and_info(root):
    with S3(s3root=root) as s3:
        url = s3.put("a.txt", "hello")
        assert url == f"{root}/a.txt"
        s3.put("b.bin", b"\x00\x01")
        obj = s3.get("a.txt")
        assert (obj.text, obj.blob, obj.size, obj.key, obj.url) == ("hello", b"hello", 5, "a.txt", url)
        assert obj.exists and obj.downloaded and os.path.dirname(obj.path) == s3.tmpdir
        assert obj.content_type and obj.metadata == {}
        assert s3.get(url).blob == b"hello"  # a full url works as well
        info = s3.info("b.bin")
        assert info.size == 2 and info.exists and not info.downloaded and info.blob is None
        assert [o.size for o in s3.info_many(["a.txt", "b.bin"])] == [5, 2]


def test_overwrite_false_keeps_the_first(root):
    with S3(s3root=root) as s3:
        s3.put("k", "one")
        s3.put("k", "two", overwrite=False)
        assert s3.get("k").text == "one"
        s3.put("k", "three")
        assert s3.get("k").text == "three"


def test_missing_keys(root):
    with S3(s3root=root) as s3:
        with pytest.raises(S3NotFound, match="not found: .*/nope"):
            s3.get("nope")
        with pytest.raises(MetaflowS3NotFound):
            s3.get_many(["nope"])
        with pytest.raises(S3NotFound):
            s3.info("nope")
        missing = s3.get("nope", return_missing=True)
        assert not missing.exists and not missing.downloaded and missing.blob is None
        s3.put("there", "x")
        got = s3.get_many(["there", "nope"], return_missing=True)
        assert [o.exists for o in got] == [True, False]
        assert not s3.info("nope", return_missing=True).exists


def test_many_recursive_listing_and_all(root):
    with S3(s3root=root) as s3:
        urls = s3.put_many([(f"d/{i}", str(i)) for i in range(30)] + [("d/sub/x", "x"), ("top", "t")])
        assert len(urls) == 32
        assert [o.text for o in s3.get_many([f"d/{i}" for i in range(30)])] == [str(i) for i in range(30)]
        children = {o.key: o.exists for o in s3.list_paths(["d"])}
        assert children["d/sub"] is False and children["d/7"] is True and len(children) == 31
        assert {o.key for o in s3.list_paths()} == {"d", "top"}
        assert len(s3.list_recursive(["d"])) == 31
        assert sorted(o.text for o in s3.get_recursive(["d/sub"])) == ["x"]
        assert len(s3.get_all()) == 32


def test_put_files_leaves_the_files(root, tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"file %d" % i)
        paths.append((f"files/{i}", str(path)))
    with S3(s3root=root) as s3:
        s3.put_files(paths)
        assert all(os.path.exists(p) for _, p in paths)
        assert [o.blob for o in s3.get_many([k for k, _ in paths])] == [b"file 0", b"file 1", b"file 2"]
        with pytest.raises(MfcError, match="is not a file"):
            s3.put_files([("x", str(tmp_path / "absent"))])


def test_bucket_prefix_and_no_root(env, root):
    bucket = root[len("s3://"):].split("/")[0]
    with S3(bucket=bucket, prefix="some/prefix") as s3:
        s3.put("k", "v")
    with S3() as s3:
        assert s3.get(f"{root}/k").text == "v"
        with pytest.raises(MfcError, match="needs a full s3:// url"):
            s3.get("k")


def test_temp_dir_is_removed(root):
    s3 = S3(s3root=root)
    s3.put("k", "v")
    path = s3.get("k").path
    assert os.path.exists(path)
    s3.close()
    assert not os.path.exists(s3.tmpdir or path) and not os.path.exists(os.path.dirname(path))
    with S3(s3root=root) as s3:
        tmp = s3.tmpdir
        s3.get("k")
    assert tmp and not os.path.exists(tmp)


@pytest.mark.parametrize("bad", ["/local/path", "s3://Bad_Bucket/x", "http://host/b"])
def test_bad_s3root_is_one_clear_error(env, bad):
    with pytest.raises(MfcError, match="is not an s3://bucket/key URL") as info:
        S3(s3root=bad)
    assert bad in str(info.value)


def test_run_outside_an_s3_datastore(env, tmp_path):
    class FakeRun:
        pathspec = "SomeFlow/12"

    config = Config()
    config.values["datastore_root"] = str(tmp_path)
    with pytest.raises(MfcError, match="needs an S3 datastore"):
        S3(run=FakeRun(), config=config)


def test_s3_run_in_a_step(env, tmp_path):
    bucket = env.new_bucket()
    root = f"s3://{bucket}/ds"
    flow = tmp_path / "s3_run.py"
    flow.write_text(rewrite_imports(open(flow_file("s3_run")).read()))
    proc, run_id = mfc_run(None, str(flow), "--datastore", "s3", "--datastore-root", root, **env.env())
    assert run_id and "hello from S3RunFlow ['0', '1', '4']" in proc.stdout

    class Run:
        pathspec = f"S3RunFlow/{run_id}"

    config = Config()
    config.values["datastore_root"] = root
    with S3(run=Run(), config=config) as s3:
        assert s3.get("greeting").url == f"{root}/data/S3RunFlow/{run_id}/greeting"
        assert s3.get("greeting").text == "hello from S3RunFlow"
        assert [o.key for o in s3.list_paths(["nums"])] == ["nums/0", "nums/1", "nums/2"]


def _count_requests(s3: S3, bucket: str) -> dict[str, int]:
    """Requests the client of ``s3`` makes to ``bucket`` from now on, by operation."""
    seen: dict[str, int] = {}

    def count(model, **_):
        seen[model.name] = seen.get(model.name, 0) + 1

    s3._store(bucket).client.meta.events.register("before-call.s3", count)
    return seen


def test_get_takes_its_info_from_the_get_itself(env, root):
    bucket, prefix = root[len("s3://"):].split("/", 1)
    env.client().put_object(Bucket=bucket, Key=f"{prefix}/doc.json", Body=b"{}", ContentType="application/json",
                            Metadata={"owner": "ann"})
    with S3(s3root=root) as s3:
        seen = _count_requests(s3, bucket)
        obj = s3.get("doc.json")
        assert (obj.content_type, obj.metadata, obj.blob, obj.size) == ("application/json", {"owner": "ann"}, b"{}", 2)
        assert obj.last_modified is not None
        plain = s3.get_many(["doc.json"], return_info=False)[0]
        assert plain.blob == b"{}" and plain.content_type is None and not plain.has_info
        assert seen == {"GetObject": 2}, seen  # no HEAD per object


def test_get_many_streams_each_object_into_its_own_file(root):
    blobs = {f"many/{i:03d}": os.urandom(i * 37) for i in range(120)}
    with S3(s3root=root) as s3:
        s3.put_many(list(blobs.items()))
        got = s3.get_many([*blobs, "many/000"])
        assert [o.blob for o in got] == [*blobs.values(), b""]
        assert len({o.path for o in got}) == len(blobs) and all(os.path.dirname(o.path) == s3.tmpdir for o in got)
        assert sorted(os.listdir(s3.tmpdir)) == sorted(o.path.rsplit("/", 1)[1] for o in got[:-1])
        s3.close()
        with pytest.raises(MfcError, match="closed"):
            s3.get_many(["many/001"])
