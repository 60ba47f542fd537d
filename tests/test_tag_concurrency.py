"""Tag changes under concurrent writers: compare-and-swap writes on the local store and on S3
(moto server), so 16 concurrent ``mfc tag add`` on one run keep all 16."""

from __future__ import annotations

import subprocess
import threading

import pytest
from support import clean_env, describe, mfc_executable

from mfc.exceptions import MfcError
from mfc.stores.blob import BlobNotFound
from mfc.stores.local import LocalBlobStore
from mfc.stores.metadata import BlobMetadata
from mfc.stores.s3 import S3BlobStore

WRITERS = 16


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    """(blob store, datastore root, environment for CLI subprocesses) for each backend."""
    if request.param == "local":
        root = str(tmp_path / "ds")
        yield LocalBlobStore(root), root, {}
        return
    moto = request.getfixturevalue("moto")
    root = f"s3://{moto.new_bucket()}/tags"
    store = S3BlobStore(root, client=moto.client())
    yield store, root, moto.env()
    store.close()


# -- the compare-and-swap contract, both backends ------------------------------------------------

def test_put_if_creates_only_once_and_swaps_only_from_the_version_read(backend):
    store, _, _ = backend
    with pytest.raises(BlobNotFound):
        store.get_versioned("r/_tags.json")
    assert store.put_if("r/_tags.json", b"one", None)
    assert not store.put_if("r/_tags.json", b"other", None)  # create-only: it exists now
    data, first = store.get_versioned("r/_tags.json")
    assert data == b"one"
    assert store.put_if("r/_tags.json", b"two", first)
    assert not store.put_if("r/_tags.json", b"three", first)  # stale: someone wrote since
    data, second = store.get_versioned("r/_tags.json")
    assert data == b"two" and second != first
    store.delete("r/_tags.json")
    assert not store.put_if("r/_tags.json", b"four", second)  # gone: nothing to swap
    with pytest.raises(BlobNotFound):
        store.get_versioned("r/_tags.json")


def test_concurrent_tag_updates_in_threads_lose_nothing(backend):
    store, _, _ = backend
    meta = BlobMetadata(store)
    run_id = meta.create_run("TagFlow", {"tags": ["seed"], "system_tags": ["user:me"]})
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            barrier.wait()
            meta.update_tags("TagFlow", run_id, add=[f"t{i}", f"u{i}"])
            meta.update_tags("TagFlow", run_id, remove=[f"u{i}"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert meta.run("TagFlow", run_id)["tags"] == sorted(["seed", *(f"t{i}" for i in range(WRITERS))])


def test_an_update_that_changes_nothing_writes_nothing(tmp_path):
    store = LocalBlobStore(str(tmp_path / "ds"))
    meta = BlobMetadata(store)
    run_id = meta.create_run("TagFlow", {"tags": ["a"]})
    assert meta.update_tags("TagFlow", run_id, add=["b"]) == ["a", "b"]
    key = f"TagFlow/{run_id}/_tags.json"
    before = store.get_versioned(key)
    assert meta.update_tags("TagFlow", run_id, add=["a", "b"], remove=["nope"]) == ["a", "b"]
    assert store.get_versioned(key) == before


# -- 16 concurrent ``mfc tag add`` processes, both backends ---------------------------------------

def test_sixteen_concurrent_tag_add_commands_keep_all_sixteen(backend):
    store, root, env = backend
    meta = BlobMetadata(store)
    run_id = meta.create_run("TagFlow", {"tags": ["orig"], "system_tags": ["user:me"]})
    pathspec = f"TagFlow/{run_id}"
    procs = [subprocess.Popen([mfc_executable(), "tag", "add", pathspec, f"tag-{i}"], env=clean_env(root, env),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(WRITERS)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, describe(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    expected = sorted(["orig", *(f"tag-{i}" for i in range(WRITERS))])
    assert meta.run("TagFlow", run_id)["tags"] == expected
    listed = subprocess.run([mfc_executable(), "tag", "list", pathspec], env=clean_env(root, env),
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.splitlines()[0] == f"user tags:   {', '.join(expected)}"


def test_tags_of_a_run_that_does_not_exist_are_not_written(tmp_path):
    store = LocalBlobStore(str(tmp_path / "ds"))
    with pytest.raises(MfcError, match="no run TagFlow/123"):
        BlobMetadata(store).update_tags("TagFlow", "123", add=["x"])
    assert not (tmp_path / "ds").exists()


def test_a_damaged_tags_record_is_one_clear_error(tmp_path):
    store = LocalBlobStore(str(tmp_path / "ds"))
    meta = BlobMetadata(store)
    run_id = meta.create_run("TagFlow", {"tags": []})
    store.put_bytes(f"TagFlow/{run_id}/_tags.json", b'{"tags": "oops"')
    with pytest.raises(MfcError, match=r"_tags.json is not a tags record"):
        meta.update_tags("TagFlow", run_id, add=["x"])
