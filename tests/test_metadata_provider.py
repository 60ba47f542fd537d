"""The metadata provider interface and run creation: ``start_run(run_id=...)`` is idempotent per
id (also with concurrent callers), the client and the CLI read runs only through the provider
the ``metadata`` setting names, and ``Flow.runs()`` reads runs in batches, on S3 too, leaving
damaged runs out with a warning."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter

import pytest
from support import assert_no_traceback, describe, flow_path, mfc, run_flow

from mfc.client import Flow, default_namespace, namespace
from mfc.client.datastore import Datastore
from mfc.pathspec import InvalidPathspec
from mfc.runner.start import PARAMETERS_TASK, start_run
from mfc.stores import provider as provider_module
from mfc.stores.artifacts import ArtifactStore
from mfc.stores.blob import open_blob_store
from mfc.stores.local import LocalBlobStore
from mfc.stores.metadata import BlobMetadata
from mfc.stores.provider import MetadataProvider, RunExists, open_metadata
from mfc.stores.s3 import S3BlobStore

INFO = {"user": "tester", "tags": ["a"], "system_tags": ["user:tester"], "parameters": {"alpha": 1}}
VALUES = {"alpha": 1, "text": "hello", "table": {"k": [1, 2, 3]}}


@pytest.fixture(params=["local", "s3"])
def blobs(request, tmp_path):
    if request.param == "local":
        yield LocalBlobStore(str(tmp_path / "ds"))
        return
    moto = request.getfixturevalue("moto")
    store = S3BlobStore(f"s3://{moto.new_bucket()}/meta/", client=moto.client())
    yield store
    store.close()


@pytest.fixture
def every_namespace():
    namespace(None)
    yield
    default_namespace()


def _start(blobs, run_id=None, info=INFO, values=VALUES, flow="StartFlow"):
    return start_run(BlobMetadata(blobs), ArtifactStore(blobs, flow), dict(info), values, run_id)


def _parameters_key(run_id: str, flow: str = "StartFlow") -> str:
    return f"{flow}/{run_id}/_parameters/{PARAMETERS_TASK}/0.json"


# -- start_run ------------------------------------------------------------------------------------

def test_start_run_with_a_given_id_is_idempotent(blobs):
    assert _start(blobs, "exec-1") == "exec-1"
    run_bytes = blobs.get_bytes("StartFlow/exec-1/_run.json")
    params_bytes = blobs.get_bytes(_parameters_key("exec-1"))
    assert _start(blobs, "exec-1") == "exec-1"  # a retried entrypoint: accepted, nothing rewritten
    assert blobs.get_bytes("StartFlow/exec-1/_run.json") == run_bytes
    assert blobs.get_bytes(_parameters_key("exec-1")) == params_bytes
    meta = BlobMetadata(blobs)
    assert meta.run_ids("StartFlow") == ["exec-1"]
    record = meta.run("StartFlow", "exec-1")
    assert record["run_id"] == "exec-1" and record["user"] == "tester" and record["tags"] == ["a"]
    parameters = json.loads(params_bytes)
    assert sorted(parameters["artifacts"]) == sorted(VALUES)
    store = ArtifactStore(blobs, "StartFlow")
    assert {a: store.load(ref[0]) for a, ref in parameters["artifacts"].items()} == VALUES


def test_start_run_refuses_different_content_under_an_id_in_use(blobs):
    _start(blobs, "exec-2")
    with pytest.raises(RunExists, match=r"run StartFlow/exec-2 exists already with different content \(user differs\)"):
        _start(blobs, "exec-2", info={**INFO, "user": "someone-else"})
    with pytest.raises(RunExists, match=r"different parameters \(text\)"):
        _start(blobs, "exec-2", values={**VALUES, "text": "changed"})
    with pytest.raises(RunExists, match=r"different parameters \(extra\)"):
        _start(blobs, "exec-2", values={**VALUES, "extra": 5})
    assert json.loads(blobs.get_bytes("StartFlow/exec-2/_run.json"))["user"] == "tester"


def test_start_run_concurrent_callers_of_one_id_all_succeed_once(blobs):
    results, errors = [], []
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        try:
            results.append(_start(blobs, "exec-3"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == ["exec-3"] * 8
    assert BlobMetadata(blobs).run_ids("StartFlow") == ["exec-3"]
    assert BlobMetadata(blobs).run("StartFlow", "exec-3")["status"] == "running"


def test_start_run_without_an_id_claims_a_new_one_each_time(blobs):
    results = []
    threads = [threading.Thread(target=lambda: results.append(_start(blobs))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 6 and all(r.isdigit() for r in results)
    assert sorted(BlobMetadata(blobs).run_ids("StartFlow")) == sorted(results)


def test_start_run_checks_the_given_id(tmp_path):
    with pytest.raises(InvalidPathspec):
        _start(LocalBlobStore(str(tmp_path / "ds")), "../escape")


def test_unpicklable_parameter_leaves_no_run(tmp_path):
    blobs = LocalBlobStore(str(tmp_path / "ds"))
    with pytest.raises(Exception, match="cannot be pickled"):
        _start(blobs, "exec-4", values={"lock": threading.Lock()})
    assert BlobMetadata(blobs).run_ids("StartFlow") == []


# -- the provider chosen by the `metadata` setting, used by the client and the CLI --------------

class CountingProvider(BlobMetadata):
    """The local provider, counting the calls made to it."""

    calls: Counter = Counter()

    def __getattribute__(self, name):
        if not name.startswith("_") and callable(getattr(type(self), name, None)):
            CountingProvider.calls[name] += 1
        return super().__getattribute__(name)


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(provider_module.PROVIDERS, "counting", f"{__name__}:CountingProvider")
    CountingProvider.calls.clear()
    return CountingProvider.calls


def _many_runs(blobs, flow: str, count: int) -> list[str]:
    meta = BlobMetadata(blobs)
    ids = []
    for index in range(count):
        run_id = meta.create_run(flow, {"user": "tester", "tags": [f"t{index % 3}"], "system_tags": ["user:tester"]})
        meta.finish_run(flow, run_id, "succeeded")
        ids.append(run_id)
    return ids[::-1]


def test_open_metadata_follows_the_setting(tmp_path, monkeypatch, counting):
    from mfc.config import Config

    blobs = LocalBlobStore(str(tmp_path / "ds"))
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "none.toml"))
    assert type(open_metadata(blobs, Config())) is BlobMetadata and Config()["metadata"] == "local"
    monkeypatch.setenv("MFC_METADATA", "counting")
    assert type(open_metadata(blobs, Config())) is CountingProvider
    assert isinstance(open_metadata(blobs, Config()), MetadataProvider)
    monkeypatch.setenv("MFC_METADATA", "bogus")
    with pytest.raises(Exception, match=r"metadata from env MFC_METADATA: no metadata provider 'bogus' \(known: local"):
        open_metadata(blobs, Config())


def test_client_lists_runs_through_the_provider_in_batches(tmp_path, monkeypatch, counting, every_namespace):
    root = tmp_path / "ds"
    ids = _many_runs(LocalBlobStore(str(root)), "ManyFlow", 40)
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("MFC_DATASTORE_ROOT", str(root))
    monkeypatch.setenv("MFC_METADATA", "counting")
    listed = [run.id for run in Flow("ManyFlow").runs()]
    assert listed == ids
    assert counting["runs"] == 3  # pages of 8, 16 and 32 runs
    assert counting["run"] == 0  # never one run at a time
    assert [run.id for run in Flow("ManyFlow").runs("t1")] == [i for n, i in enumerate(ids[::-1]) if n % 3 == 1][::-1]
    counting.clear()
    assert Flow("ManyFlow").latest_run.id == ids[0]
    assert counting["runs"] == 1


def test_cli_reads_runs_through_the_provider(root, tmp_path, monkeypatch, counting, capsys):
    from mfc.cli.main import main

    _, run_id = run_flow(root, flow_path("params.py"))
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("MFC_DATASTORE_ROOT", str(root))
    monkeypatch.setenv("MFC_METADATA", "counting")

    def cli(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as done:
            main(list(args))
        out = capsys.readouterr()
        return done.value.code, out.out + out.err

    code, out = cli("runs", "ParamsFlow")
    assert code == 0 and run_id in out, out
    assert counting["runs"] >= 1 and counting["run_ids"] == 1
    counting.clear()
    assert cli("tag", "add", f"ParamsFlow/{run_id}", "reviewed")[0] == 0
    assert counting["update_tags"] == 1
    counting.clear()
    code, out = cli("logs", f"ParamsFlow/{run_id}/start")
    assert code == 0 and counting["run"] == 1 and counting["records"] >= 1, out
    counting.clear()
    code, out = cli("package", "show", f"ParamsFlow/{run_id}")
    assert code == 0 and counting["run"] == 1, out
    counting.clear()
    code, out = cli("verify", f"ParamsFlow/{run_id}")
    assert code == 0 and counting["run_exists"] == 1 and counting["steps"] == 1, out


def test_config_show_lists_metadata_and_a_bad_provider_is_one_line(root):
    proc = mfc(root, "config", "show")
    assert proc.returncode == 0, describe(proc)
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("metadata ")]
    assert line.split()[:3] == ["metadata", "local", "default"], line
    shown = mfc(root, "config", "show", env={"MFC_METADATA": "service"})
    assert any(line.split()[:2] == ["metadata", "service"] and "env MFC_METADATA" in line
               for line in shown.stdout.splitlines()), shown.stdout
    for args in (("runs", "ParamsFlow"), ("run", flow_path("params.py"))):
        proc = mfc(root, *args, env={"MFC_METADATA": "nosuch"})
        assert proc.returncode == 2, describe(proc)
        assert_no_traceback(proc.stderr)
        assert proc.stderr.strip().splitlines()[-1] == (
            "error: metadata from env MFC_METADATA: no metadata provider 'nosuch' (known: local, service)"), proc.stderr
        proc = mfc(root, *args, env={"MFC_METADATA": "service"})  # the service provider needs its URL
        assert proc.returncode == 2 and "needs service_url" in proc.stderr.strip().splitlines()[-1], describe(proc)
        assert_no_traceback(proc.stderr)
    assert not os.path.exists(root / "ParamsFlow")  # the run refused to start: nothing recorded


# -- Flow.runs() on S3 with damaged and missing records -----------------------------------------

def test_flow_runs_on_s3_warns_and_skips_damaged_runs(moto, monkeypatch, tmp_path, capsys, every_namespace):
    bucket = moto.new_bucket()
    root = f"s3://{bucket}/data"
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "none.toml"))
    blobs = open_blob_store(root)
    good = _many_runs(blobs, "S3Flow", 12)
    damaged_run, damaged_status, damaged_tags, damaged_lease, no_record = good[1], good[3], good[5], good[7], good[9]
    blobs.put_bytes(f"S3Flow/{damaged_run}/_run.json", b"{not json")
    blobs.put_bytes(f"S3Flow/{damaged_status}/_status.json", b"[]")
    blobs.put_bytes(f"S3Flow/{damaged_tags}/_tags.json", b'{"tags": "x"}')
    blobs.put_bytes(f"S3Flow/{damaged_lease}/_lease.json", b"{")
    blobs.delete(f"S3Flow/{no_record}/_run.json")
    blobs.delete(f"S3Flow/{no_record}/_status.json")
    blobs.put_bytes(f"S3Flow/{no_record}/start/1/0.stdout", b"still being created")
    listed = list(Flow("S3Flow", _datastore=Datastore(root, "local")).runs())
    expected = [r for r in good if r not in (damaged_run, damaged_status, damaged_tags, no_record)]
    assert [run.id for run in listed] == expected
    assert all(run.successful for run in listed)  # the damaged lease is outweighed by the final status
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 3, warnings
    for run_id, name in ((damaged_run, "_run.json"), (damaged_status, "_status.json"), (damaged_tags, "_tags.json")):
        assert any(f"S3Flow/{run_id}/{name}" in w and f"run S3Flow/{run_id} is left out" in w for w in warnings), warnings


def test_a_damaged_heartbeat_falls_back_to_the_run_records_driver(tmp_path):
    from mfc.stores.lease import driver_record

    blobs = LocalBlobStore(str(tmp_path / "ds"))
    meta = BlobMetadata(blobs)
    run_id = meta.create_run("BeatFlow", {"user": "tester", "driver": driver_record(5.0, 20.0)})
    blobs.put_bytes(f"BeatFlow/{run_id}/_lease.json", b"{half a heartbe")
    assert meta.run("BeatFlow", run_id)["status"] == "running"  # this process drives it: alive
    [(listed, record)] = meta.runs("BeatFlow", [run_id])
    assert listed == run_id and record["status"] == "running"


def test_dropping_a_lease_is_part_of_the_provider_interface(tmp_path):
    """``measure_refresh`` (``make bench``) drops its scratch run's lease through whichever
    provider the setting names: ``drop_lease`` is an abstract method of MetadataProvider, so a
    provider without it cannot be made, and the local one removes the lease."""
    from mfc.runner.lease import measure_refresh

    assert {"write_lease", "drop_lease"} <= MetadataProvider.__abstractmethods__
    root = str(tmp_path / "ds")
    metadata = BlobMetadata(LocalBlobStore(root))
    metadata.write_lease("LeaseFlow", "r1", {"host": "h", "pid": 1, "beat": 0})
    assert metadata.facts("LeaseFlow", "r1")["lease"] is not None
    metadata.drop_lease("LeaseFlow", "r1")
    assert metadata.facts("LeaseFlow", "r1")["lease"] is None
    assert measure_refresh(root, beats=2) >= 0
    assert not any("lease" in names for _, _, names in os.walk(root))
