"""Content addresses: new objects are addressed by BLAKE3 (``b3-<hex>``), code packages and the
objects of older runs by their sha256 (bare hex), and both kinds read, check and verify alike on
every backend: loads, split lists of either width, ``mfc verify`` and resume of an older run."""

from __future__ import annotations

import hashlib
import os
import shutil

import blake3
import pytest
from integrity_helpers import FINAL, FLOW, INTEGRITY_FLOW, Damage, artifact_key, as_sha256, make_sha256_run
from support import assert_no_traceback, describe, mfc, only, run_flow, task_records, write_flow

from mfc.exceptions import CorruptArtifact
from mfc.stores.artifacts import ArtifactStore, data_key
from mfc.stores.integrity import data_sha, is_content_addressed, is_digest
from mfc.stores.local import LocalBlobStore
from mfc.stores.records import SHA_WIDTH, TaskRecords
from mfc.stores.s3 import S3BlobStore

MiB = 1024 * 1024
VALUES = {"int": 12345, "zlib": b"compressible " * 1000, "large": os.urandom(9 * MiB)}


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    """(blob store, root, a fresh store on the same root) of each backend in turn."""
    if request.param == "local":
        root = str(tmp_path / "ds")
        return LocalBlobStore(root), root, lambda: LocalBlobStore(root)
    server = request.getfixturevalue("moto")
    root = f"s3://{server.new_bucket()}/prefix"
    client = server.client()
    return S3BlobStore(root, client=client), root, lambda: S3BlobStore(root, client=client)


def test_new_artifacts_are_addressed_by_the_blake3_of_their_bytes(tmp_path):
    store = ArtifactStore(LocalBlobStore(str(tmp_path)), "F")
    ref = store.save(b"payload " * 100)
    stored = (tmp_path / data_key("F", ref.sha)).read_bytes()
    import zlib

    payload = zlib.decompress(stored[1:]) if stored[:1] == b"Z" else stored[1:]
    assert ref.sha == "b3-" + blake3.blake3(payload).hexdigest()
    assert data_key("F", ref.sha) == f"F/data/{ref.sha[3:5]}/{ref.sha}"
    assert store.digest(b"payload " * 100) == ref.sha
    assert store.digest(b"payload " * 100, like="ab" * 32) == hashlib.sha256(payload).hexdigest()
    raw = store.save_bytes(b"some file")
    assert raw == "b3-" + blake3.blake3(b"some file").hexdigest()
    assert store.save_bytes(b"a package", sha256=True) == hashlib.sha256(b"a package").hexdigest()


def test_both_kinds_of_key_are_content_addressed_and_nothing_else_is():
    b3, old = "b3-" + "ab" * 32, "cd" * 32
    assert data_sha(f"F/data/ab/{b3}") == b3 and data_sha(f"F/data/cd/{old}") == old
    assert is_digest(b3) and is_digest(old)
    for key in (f"F/data/b3/{b3}", f"F/data/ab/b3-{old}", f"F/data/ab/b3-{'ab' * 31}", f"F/data/ab/x3-{'ab' * 32}",
                f"F/data/ab/{b3}/x"):
        assert not is_content_addressed(key), key
    assert not is_digest("b3-" + "AB" * 32) and not is_digest("b4-" + "ab" * 32)


@pytest.mark.parametrize("how", ["flip", "truncate", "empty", "append"])
@pytest.mark.parametrize("kind", list(VALUES))
def test_an_old_sha256_object_loads_and_is_checked(backend, kind, how):
    blobs, root, fresh = backend
    store = ArtifactStore(blobs, "F")
    damage = Damage(root, getattr(blobs, "client", None))
    sha = as_sha256(damage, "F", store.save(VALUES[kind]).sha)
    assert len(sha) == 64
    assert ArtifactStore(fresh(), "F").load(sha) == VALUES[kind]
    damage.damage(data_key("F", sha), how)
    with pytest.raises(CorruptArtifact, match=f"data {sha[:12]} at .* is corrupt"):
        ArtifactStore(fresh(), "F").load(sha)


def test_an_object_stored_under_the_other_algorithm_is_corrupt(backend):
    """A payload whose sha256 address holds the right bytes is not whole under a b3 address made
    of the same hex: the address decides the hash."""
    blobs, root, fresh = backend
    store = ArtifactStore(blobs, "F")
    damage = Damage(root, getattr(blobs, "client", None))
    sha = store.save_bytes(b"x" * 100, sha256=True)
    damage.write(data_key("F", "b3-" + sha), damage.raw(data_key("F", sha)))
    with pytest.raises(CorruptArtifact):
        ArtifactStore(fresh(), "F").load_bytes("b3-" + sha)
    assert ArtifactStore(fresh(), "F").load_bytes(sha) == b"x" * 100


def test_split_lists_of_b3_items_and_old_64_wide_lists_both_read(backend):
    blobs, _, _ = backend
    records = TaskRecords(blobs, "F")
    new = ["b3-" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(12)]
    old = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(12)]
    assert records.write_split("F/1/s/t/0.split.json", new) == 67
    assert records.write_split("F/1/s/u/0.split.json", old) == SHA_WIDTH
    assert [records.foreach_item({"split": "F/1/s/t/0.split.json", "width": 67}, i) for i in (0, 5, 11)] == \
        [new[0], new[5], new[11]]
    assert [records.foreach_item({"split": "F/1/s/u/0.split.json"}, i) for i in (0, 5, 11)] == \
        [old[0], old[5], old[11]]  # a foreach record of an older run gives no width
    with pytest.raises(ValueError):
        records.write_split("F/1/s/v/0.split.json", [new[0], old[1]])


FOREACH_FLOW = """
    from mfc import FlowSpec, step

    class AddrFlow(FlowSpec):
        @step
        def start(self):
            self.items = [10, 20, 30]
            self.next(self.body, foreach="items")

        @step
        def body(self):
            self.out = self.input * 2
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.out for i in inputs)
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_a_foreach_records_its_split_width_and_runs_with_b3_items(tmp_path):
    flow = write_flow(tmp_path, FOREACH_FLOW)
    root = tmp_path / "ds"
    _, run_id = run_flow(root, flow)
    [start] = task_records(root, "AddrFlow", run_id, "start")
    assert start["foreach"]["width"] == 67
    assert only(root, "AddrFlow", run_id, "join")["total"] == 120
    inputs = sorted(r["foreach_stack"][0]["input"] for r in task_records(root, "AddrFlow", run_id, "body"))
    assert all(sha.startswith("b3-") for sha in inputs)


def test_resume_of_an_old_foreach_run_reads_its_64_wide_split_list(tmp_path):
    flow = write_flow(tmp_path, FOREACH_FLOW)
    root = tmp_path / "ds"
    _, run_id = run_flow(root, flow)
    make_sha256_run(str(root), "AddrFlow", run_id)
    [start] = task_records(root, "AddrFlow", run_id, "start")
    assert "width" not in start["foreach"] and len(start["artifacts"]["items"][0]) == 64
    assert mfc(root, "verify", f"AddrFlow/{run_id}").returncode == 0
    proc = mfc(root, "resume", flow, "body", "--origin-run-id", run_id, "--run-id-file", str(tmp_path / "rid"), "-q")
    assert proc.returncode == 0, describe(proc)
    new_id = (tmp_path / "rid").read_text().strip()
    assert only(root, "AddrFlow", new_id, "join")["total"] == 120


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    """An IntegrityFlow run rewritten as a run from before BLAKE3 addresses."""
    base = tmp_path_factory.mktemp("oldrun")
    flow = write_flow(base, INTEGRITY_FLOW)
    root = base / "ds"
    _, run_id = run_flow(root, flow)
    make_sha256_run(str(root), FLOW, run_id)
    return {"flow": flow, "root": root, "run_id": run_id}


@pytest.fixture
def old_copy(old_run, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(old_run["root"], root)
    return {**old_run, "root": root}


def test_an_old_run_reads_and_verifies(old_copy):
    root, run_id = old_copy["root"], old_copy["run_id"]
    key = artifact_key(str(root), run_id, "start", "value")
    assert len(key.rsplit("/", 1)[1]) == 64
    value = mfc(root, "dump", f"{FLOW}/{run_id}/end", "--artifact", "final")
    assert value.returncode == 0 and str(FINAL) in value.stdout, describe(value)
    proc = mfc(root, "verify", f"{FLOW}/{run_id}")
    assert proc.returncode == 0, describe(proc)
    Damage(str(root)).damage(key, "flip")
    proc = mfc(root, "verify", f"{FLOW}/{run_id}")
    assert proc.returncode == 1 and str(root / key) in proc.stdout + proc.stderr, describe(proc)
    dump = mfc(root, "dump", f"{FLOW}/{run_id}/start", "--artifact", "value")
    assert dump.returncode == 1 and "12346" not in dump.stdout, describe(dump)
    assert_no_traceback(dump.stderr)


def test_resume_of_an_old_run_reruns_a_step_whose_sha256_artifact_is_damaged(old_copy):
    root, run_id = old_copy["root"], old_copy["run_id"]
    key = artifact_key(str(root), run_id, "start", "value")
    Damage(str(root)).damage(key, "flip")
    proc = mfc(root, "resume", old_copy["flow"], "end", "--run-id-file", str(root.parent / "rid"), "-q")
    assert proc.returncode == 0, describe(proc)
    assert "step start reruns instead of being cloned" in proc.stderr
    new_id = (root.parent / "rid").read_text().strip()
    assert only(root, FLOW, new_id, "end")["final"] == FINAL
    [start] = task_records(root, FLOW, new_id, "start")
    assert start["artifacts"]["value"][0].startswith("b3-")  # start reran: stored anew
    assert mfc(root, "verify", f"{FLOW}/{new_id}").returncode == 0


def test_resume_of_an_old_run_clones_its_sha256_refs(old_copy):
    root, run_id = old_copy["root"], old_copy["run_id"]
    proc = mfc(root, "resume", old_copy["flow"], "end", "--run-id-file", str(root.parent / "rid"), "-q")
    assert proc.returncode == 0, describe(proc)
    new_id = (root.parent / "rid").read_text().strip()
    [old], [new] = task_records(root, FLOW, run_id, "middle"), task_records(root, FLOW, new_id, "middle")
    assert new["artifacts"] == old["artifacts"] and len(new["artifacts"]["doubled"][0]) == 64
    assert only(root, FLOW, new_id, "end")["final"] == FINAL
    assert mfc(root, "verify", f"{FLOW}/{new_id}").returncode == 0


def test_typed_buffers_the_pickler_hands_over_are_hashed_as_bytes(tmp_path):
    numpy = pytest.importorskip("numpy")
    store = ArtifactStore(LocalBlobStore(str(tmp_path)), "F")
    for value in (numpy.arange(10, dtype="float64"), numpy.arange(6 * 1024 * 1024, dtype="int32").reshape(1024, -1)):
        ref = store.save(value)
        assert ref.sha.startswith("b3-") and store.digest(value) == ref.sha
        assert (ArtifactStore(LocalBlobStore(str(tmp_path)), "F").load(ref.sha) == value).all()
