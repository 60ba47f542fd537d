"""Integrity: a damaged artifact is never a value. Flipped, truncated, emptied or extended objects
raise CorruptArtifact (exit 1, one line naming the task, the artifact and the stored object) from
the artifact store on both backends, the client, ``mfc dump`` (plain, ``--artifact``, ``--json``),
a task that reads one as its input, and resume, which never clones one into a new run."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys

import pytest
from integrity_helpers import FINAL, FLOW, INTEGRITY_FLOW, Damage, artifact_key, task_id_of
from support import assert_no_traceback, describe, mfc, only, run_flow, task_records, write_flow

from mfc.exceptions import CorruptArtifact, MfcError, MissingData
from mfc.stores.artifacts import ArtifactError, ArtifactStore, data_key
from mfc.stores.local import LocalBlobStore
from mfc.stores.s3 import S3BlobStore

MiB = 1024 * 1024
DAMAGES = ["flip", "truncate", "empty", "append"]


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    """(blob store, root) of each backend in turn."""
    if request.param == "local":
        root = str(tmp_path / "ds")
        return LocalBlobStore(root), root
    server = request.getfixturevalue("moto")
    root = f"s3://{server.new_bucket()}/prefix"
    return S3BlobStore(root, client=server.client()), root


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# -- the artifact store, on both backends ---------------------------------------------------------

VALUES = {"int": 12345, "zlib": b"compressible " * 1000, "large": os.urandom(9 * MiB)}


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", list(VALUES))
def test_a_damaged_object_never_loads(backend, kind, how):
    blobs, root = backend
    store = ArtifactStore(blobs, "F")
    ref = store.save(VALUES[kind], "x", "start")
    key = data_key("F", ref.sha)
    damage = Damage(root, getattr(blobs, "client", None))
    assert damage.raw(key)[:1] == (b"Z" if kind == "zlib" else b"R")
    damage.damage(key, how)
    fresh = ArtifactStore(S3BlobStore(root, client=blobs.client) if root.startswith("s3://") else LocalBlobStore(root), "F")
    with pytest.raises(CorruptArtifact) as caught:
        fresh.load(ref.sha)
    text = str(caught.value)
    assert f"data {ref.sha[:12]} at {damage.location(key)} is corrupt" in text, text
    assert caught.value.exit_code == 1 and isinstance(caught.value, MfcError)
    with pytest.raises(CorruptArtifact):
        fresh.blobs.get_bytes(key)
    with pytest.raises(CorruptArtifact):
        with fresh.blobs.open(key) as fh:
            fh.read()


def test_a_flipped_int_is_not_returned_as_another_int(tmp_path):
    store = ArtifactStore(LocalBlobStore(str(tmp_path)), "F")
    sha = store.save(12345).sha
    Damage(str(tmp_path)).damage(data_key("F", sha), "flip")
    stored = (tmp_path / data_key("F", sha)).read_bytes()
    assert pickle.loads(stored[1:]) == 12346  # what the store returned before it checked
    with pytest.raises(CorruptArtifact, match="stored bytes hash to"):
        store.load(sha)


def test_raw_bytes_objects_are_checked_too(backend):
    blobs, root = backend
    store = ArtifactStore(blobs, "F")
    sha = store.save_bytes(os.urandom(20_000))
    Damage(root, getattr(blobs, "client", None)).damage(data_key("F", sha), "flip")
    with pytest.raises(CorruptArtifact, match=f"data {sha[:12]} .* is corrupt"):
        ArtifactStore(type(blobs)(root, **({"client": blobs.client} if hasattr(blobs, "bucket") else {})), "F").load_bytes(sha)


def test_a_missing_object_is_missing_data(backend):
    blobs, _ = backend
    store = ArtifactStore(blobs, "F")
    with pytest.raises(MissingData, match=f"data {'ab' * 6} at .* is missing"):
        store.load("ab" * 32)


def test_intact_bytes_that_do_not_unpickle(tmp_path):
    store = ArtifactStore(LocalBlobStore(str(tmp_path)), "F")
    garbage = store.save_bytes(b"this was never a pickle")
    with pytest.raises(CorruptArtifact, match="does not unpickle"):
        store.load(garbage)
    needs_module = store.save_bytes(b"\x80\x05cno_such_module_xyz\nThing\n.")
    with pytest.raises(ArtifactError, match="cannot be unpickled here: ModuleNotFoundError") as caught:
        store.load(needs_module)
    assert not isinstance(caught.value, CorruptArtifact)


def test_a_large_checked_load_returns_the_value_and_stops_its_hasher(tmp_path):
    import threading

    store = ArtifactStore(LocalBlobStore(str(tmp_path)), "F")
    value = os.urandom(20 * MiB)
    sha = store.save(value).sha
    assert store.load(sha) == value
    with store.blobs.open(data_key("F", sha)) as fh:
        fh.read(10)  # closed before the end: the background hasher must stop
    assert not [t for t in threading.enumerate() if t.name == "mfc-check"]


@pytest.mark.parametrize("kind", list(VALUES))
def test_saving_a_value_again_replaces_its_damaged_copy_on_a_local_store(tmp_path, kind):
    store = ArtifactStore(LocalBlobStore(str(tmp_path)), "F")
    sha = store.save(VALUES[kind]).sha
    Damage(str(tmp_path)).damage(data_key("F", sha), "truncate" if kind == "large" else "flip")
    with pytest.raises(CorruptArtifact):
        store.load(sha)
    assert store.save(VALUES[kind]).sha == sha
    assert store.load(sha) == VALUES[kind]


# -- flows on the local store ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One IntegrityFlow run; each test damages a copy of its datastore."""
    base = tmp_path_factory.mktemp("made")
    flow = write_flow(base, INTEGRITY_FLOW)
    root = base / "ds"
    root.mkdir()
    _, run_id = run_flow(root, flow)
    return {"flow": flow, "root": root, "run_id": run_id}


@pytest.fixture
def copy(made, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(made["root"], root)
    return {**made, "root": root}


@pytest.mark.parametrize("how", ["flip", "truncate", "empty"])
def test_client_raises_corrupt_artifact_naming_everything(copy, how):
    root, run_id = str(copy["root"]), copy["run_id"]
    key = artifact_key(root, run_id, "start", "value")
    Damage(root).damage(key, how)
    task = f"{FLOW}/{run_id}/start/{task_id_of(root, run_id, 'start')}"
    code = (f"from mfc.client import Task, CorruptArtifact\n"
            f"try:\n    print(Task({task!r}).data.value)\n"
            f"except CorruptArtifact as exc:\n    print('raised', exc.exit_code, exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "MFC_DATASTORE_ROOT": root})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("raised 1 "), done.stdout
    assert f"{task}: artifact 'value': data " in done.stdout and str(Damage(root).location(key)) in done.stdout


@pytest.mark.parametrize("how", ["flip", "truncate", "empty"])
def test_dump_of_a_damaged_artifact_exits_1_with_one_line(copy, how):
    root, run_id = copy["root"], copy["run_id"]
    key = artifact_key(str(root), run_id, "start", "value")
    Damage(str(root)).damage(key, how)
    task = f"{FLOW}/{run_id}/start/{task_id_of(str(root), run_id, 'start')}"
    for args in ([task], [task, "--artifact", "value"], [task, "--json"], [f"{FLOW}/{run_id}"]):
        proc = mfc(root, "dump", *args)
        assert proc.returncode == 1, describe(proc)
        assert_no_traceback(proc.stderr)
        [line] = _error_lines(proc.stderr)
        assert f"{task}: artifact 'value': data" in line and str(root / key) in line, line
        assert "12346" not in proc.stdout
    intact = mfc(root, "dump", task, "--artifact", "blob")
    assert intact.returncode == 0 and "compressible" in intact.stdout, describe(intact)


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_resume_reruns_a_step_whose_artifact_is_damaged(copy, how):
    root, run_id = copy["root"], copy["run_id"]
    key = artifact_key(str(root), run_id, "start", "value")
    Damage(str(root)).damage(key, how)
    proc = mfc(root, "resume", copy["flow"], "end", "--run-id-file", str(root.parent / "rid"), "-q")
    assert proc.returncode == 0, describe(proc)
    assert_no_traceback(proc.stderr)
    assert "artifact 'value'" in proc.stderr and "step start reruns instead of being cloned" in proc.stderr
    new_id = (root.parent / "rid").read_text().strip()
    assert only(root, FLOW, new_id, "end")["final"] == FINAL
    [start] = task_records(root, FLOW, new_id, "start")
    assert not start.get("origin_pathspec")  # rerun, not cloned
    verify = mfc(root, "verify", f"{FLOW}/{new_id}")
    assert verify.returncode == 0, describe(verify)


def test_resume_refuses_damaged_parameters(copy):
    root, run_id = copy["root"], copy["run_id"]
    key = artifact_key(str(root), run_id, "_parameters", "offset")
    Damage(str(root)).damage(key, "truncate")
    proc = mfc(root, "resume", copy["flow"], "end", "-q")
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc.stderr)
    [line] = _error_lines(proc.stderr)
    assert "its parameters are damaged" in line and "artifact 'offset'" in line and str(root / key) in line


def test_a_new_run_does_not_point_at_a_damaged_copy_of_its_value(copy):
    root, run_id = copy["root"], copy["run_id"]
    key = artifact_key(str(root), run_id, "start", "value")
    Damage(str(root)).damage(key, "flip")
    proc, new_id = run_flow(root, copy["flow"], extra=("-q",))
    assert only(root, FLOW, new_id, "end")["final"] == FINAL
    assert artifact_key(str(root), new_id, "start", "value") == key
    assert mfc(root, "verify", f"{FLOW}/{run_id}").returncode == 0  # the shared copy is whole again


DAMAGING_FLOW = """
    import json, os
    from mfc import FlowSpec, current, step

    class DamagingFlow(FlowSpec):
        @step
        def start(self):
            self.value = 12345
            self.next(self.spoil)

        @step
        def spoil(self):
            root = os.environ["MFC_DATASTORE_ROOT"]
            run = os.path.join(root, "DamagingFlow", current.run_id, "start")
            record = json.load(open(os.path.join(run, os.listdir(run)[0], "0.json")))
            sha = record["artifacts"]["value"][0]
            path = os.path.join(root, "DamagingFlow", "data", sha.removeprefix("b3-")[:2], sha)
            data = open(path, "rb").read()
            open(path, "wb").write(data.replace(b"M\\x39\\x30", b"M\\x3a\\x30"))
            self.next(self.use)

        @step
        def use(self):
            self.seen = self.value
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_a_task_reading_a_damaged_input_fails_with_corrupt_artifact(root, tmp_path):
    flow = write_flow(tmp_path, DAMAGING_FLOW)
    proc, run_id = run_flow(root, flow, extra=("-q",), expect=1)
    [line] = _error_lines(proc.stderr)
    assert "use/" in line and "failed: CorruptArtifact:" in line and "input artifact 'value'" in line, line
    assert f"DamagingFlow/{run_id}/spoil/" in line and "/DamagingFlow/data/" in line
    [record] = task_records(root, "DamagingFlow", run_id, "use")
    assert record["status"] == "failed" and record["exception"]["type"] == "CorruptArtifact"
    assert "seen" not in record["artifacts"]


# -- a flow on S3 (moto) --------------------------------------------------------------------------

def test_damaged_artifacts_on_s3_via_client_dump_resume_and_verify(moto, tmp_path):
    flow = write_flow(tmp_path, INTEGRITY_FLOW)
    root = f"s3://{moto.new_bucket()}/runs"
    env = {**moto.env(), "MFC_DATASTORE_ROOT": root}
    id_file = tmp_path / "rid"
    proc = mfc(None, "run", flow, "-q", "--run-id-file", str(id_file), env=env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    run_id = id_file.read_text().strip()
    reader = S3BlobStore(root, client=moto.client())
    from mfc.stores.records import TaskRecords

    records = TaskRecords(reader, FLOW)
    start_id = records.tasks(run_id, "start")[0]
    sha = records.read(run_id, "start", start_id, 0)["artifacts"]["value"][0]
    key = data_key(FLOW, sha)
    damage = Damage(root, moto.client())
    damage.damage(key, "flip")
    task = f"{FLOW}/{run_id}/start/{start_id}"
    for args in ([task], [task, "--artifact", "value"]):
        dumped = mfc(None, "dump", *args, env=env, timeout=120)
        assert dumped.returncode == 1, describe(dumped)
        [line] = _error_lines(dumped.stderr)
        assert f"{task}: artifact 'value'" in line and f"{root}/{key}" in line, line
    code = (f"from mfc.client import Task, CorruptArtifact\ntry:\n    Task({task!r}).data.value\n"
            f"except CorruptArtifact as exc:\n    print('raised', exc)\n")
    client = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env},
                            timeout=120)
    assert client.stdout.startswith("raised ") and f"{root}/{key}" in client.stdout, client.stdout + client.stderr
    verify = mfc(None, "verify", f"{FLOW}/{run_id}", env=env, timeout=120)
    assert verify.returncode == 1 and f"{root}/{key} is corrupt" in verify.stdout, describe(verify)
    resumed = mfc(None, "resume", flow, "end", "-q", "--run-id-file", str(id_file), env=env, timeout=120)
    assert resumed.returncode == 0, describe(resumed)
    new_id = id_file.read_text().strip()
    end_id = records.tasks(new_id, "end")[0]
    final = records.read(new_id, "end", end_id, 0)["artifacts"]["final"][0]
    assert ArtifactStore(S3BlobStore(root, client=moto.client()), FLOW).load(final) == FINAL
    again = mfc(None, "verify", f"{FLOW}/{new_id}", env=env, timeout=120)
    assert again.returncode == 0, describe(again)
