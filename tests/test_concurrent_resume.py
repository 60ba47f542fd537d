"""Two resumes of the same origin run at once: both produce correct, distinct runs (their own
run ids, their own reruns, the same cloned tasks), locally and on S3 (moto server)."""

from __future__ import annotations

import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from support import clean_env, describe, mfc_executable, run_flow, write_flow

from mfc.stores.artifacts import ArtifactStore
from mfc.stores.blob import BlobStore, open_blob_store
from mfc.stores.metadata import BlobMetadata
from mfc.stores.records import TaskRecords
from mfc.stores.s3 import S3BlobStore

FLOW = """
    import os
    from mfc import FlowSpec, Parameter, step

    class TwinFlow(FlowSpec):
        scale = Parameter("scale", default=1)

        @step
        def start(self):
            self.items = [0, 1, 2, 3]
            self.next(self.work, foreach="items")

        @step
        def work(self):
            if os.environ.get("FAIL") == "1" and self.input == 2:
                raise ValueError("item 2 failed")
            self.y = self.input * self.scale + int(os.environ.get("ADD", "0"))
            self.next(self.join)

        @step
        def join(self, inputs):
            self.ys = [i.y for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            self.total = sum(self.ys)
"""


def _resume_both(root: str, flow: str, origin: str, tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """Start two ``mfc resume --origin-run-id`` at once (ADD=100 and ADD=200); their run ids."""
    started = {}
    for add in ("100", "200"):
        id_file = tmp_path / f"resume-{add}-{uuid.uuid4().hex}"
        command = [mfc_executable(), "resume", flow, "--origin-run-id", origin, "-q", "--run-id-file", str(id_file),
                   "--datastore-root", root]
        started[add] = (id_file, subprocess.Popen(command, env=clean_env(root, {**env, "ADD": add}),
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    run_ids = {}
    for add, (id_file, proc) in started.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, describe(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        run_ids[add] = id_file.read_text().strip()
    return run_ids


def _check(blobs: BlobStore, origin: str, run_ids: dict[str, str]) -> None:
    meta, records, store = BlobMetadata(blobs), TaskRecords(blobs, "TwinFlow"), ArtifactStore(blobs, "TwinFlow")
    assert len(set(run_ids.values())) == 2 and origin not in run_ids.values()
    origin_start = records.latest(origin, "start", records.tasks(origin, "start")[0])
    for add, run_id in run_ids.items():
        info = meta.run("TwinFlow", run_id)
        assert info["status"] == "succeeded" and info["origin_run_id"] == origin
        start = records.latest(run_id, "start", records.tasks(run_id, "start")[0])
        assert start["origin_pathspec"] == origin_start["pathspec"] and start["artifacts"] == origin_start["artifacts"]
        work = [records.latest(run_id, "work", t) for t in records.tasks(run_id, "work")]
        assert len(work) == 4 and all(r["pathspec"].startswith(f"TwinFlow/{run_id}/work/") for r in work)
        join = records.latest(run_id, "join", records.tasks(run_id, "join")[0])
        ys = store.load(join["artifacts"]["ys"][0])
        assert ys == [i * 3 + int(add) for i in range(4)]  # the origin's parameter, this resume's code path
        end = records.latest(run_id, "end", records.tasks(run_id, "end")[0])
        assert store.load(end["artifacts"]["total"][0]) == sum(ys)
        assert sorted(records.steps(run_id)) == ["end", "join", "start", "work"]


def test_two_resumes_of_one_origin_at_once_locally(root, tmp_path):
    flow = write_flow(tmp_path, FLOW)
    _, origin = run_flow(root, flow, "--scale", "3", env={"FAIL": "1"}, expect=1)
    run_ids = _resume_both(str(root), flow, origin, tmp_path, {})
    _check(open_blob_store(str(root)), origin, run_ids)


def test_two_resumes_of_one_origin_at_once_on_s3(moto, tmp_path):
    flow = write_flow(tmp_path, FLOW)
    root = f"s3://{moto.new_bucket()}/twins"
    _, origin = run_flow(tmp_path / "ds", flow, "--scale", "3", extra=("--datastore-root", root),
                         env={**moto.env(), "FAIL": "1"}, expect=1)
    run_ids = _resume_both(root, flow, origin, tmp_path, moto.env())
    store = S3BlobStore(root, client=moto.client())
    try:
        _check(store, origin, run_ids)
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_runs_created_at_once_claim_distinct_ids(backend, tmp_path, request):
    if backend == "local":
        blobs: BlobStore = open_blob_store(str(tmp_path / "ds"))
    else:
        moto = request.getfixturevalue("moto")
        blobs = S3BlobStore(f"s3://{moto.new_bucket()}/claims", client=moto.client())
    meta = BlobMetadata(blobs)
    barrier = threading.Barrier(16)
    claimed: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        claimed.append(meta.create_run("TwinFlow", {"writer": i}))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(claimed)) == 16
    writers = {meta.run("TwinFlow", run_id)["writer"] for run_id in claimed}
    assert writers == set(range(16))  # each record is its own writer's, none overwritten
