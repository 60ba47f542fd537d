"""Batched I/O in hot paths: no store call on the orchestrator's scheduling thread, joins read
their parents and their input artifacts in batches, resume clones records in batches."""

from __future__ import annotations

import io
import threading
from collections import Counter

import pytest

from mfc.exceptions import RunFailed
from mfc.graph import load_graph
from mfc.runner.executor import Executor, Handle, TaskExit, TaskStarted
from mfc.runner.orchestrator import Orchestrator, RunInfo
from mfc.runner.policy import StepPolicy
from mfc.runner.progress import Reporter
from mfc.runner.taskspec import InputRef
from mfc.stores.blob import open_blob_store
from mfc.stores.records import TaskRecords
from mfc.stores.taskrecord import Ending, TaskRecord
from tests.support import flow_path

STORE_CALLS = {"get_bytes", "get_range", "get_versioned", "get_many", "open", "exists", "exists_many", "size",
               "list", "put_bytes", "put_new", "put_new_many", "put_if", "put_file", "put_many", "put_files",
               "delete", "delete_many", "read_log"}


class ThreadRecordingStore:
    """A blob store that notes which thread makes each call that reaches the store."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.calls: list[tuple[str, str, str]] = []  # (thread name, method, key or "")

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if name not in STORE_CALLS:
            return attr

        def call(*args, **kwargs):
            key = args[0] if args and isinstance(args[0], str) else ""
            self.calls.append((threading.current_thread().name, name, key))
            return attr(*args, **kwargs)

        return call


class RecordingExecutor(Executor):
    """Runs no code: each task "runs" on a thread of its own, writes its record (or none, for
    the attempts ``die`` names) and exits."""

    reports_start = True

    def __init__(self, blobs, flow: str, die: set[tuple[str, int]]) -> None:
        super().__init__()
        self.records = TaskRecords(blobs, flow)
        self.die = die
        self._n = 0

    def submit(self, spec, stdout, stderr):
        self._n += 1
        handle = Handle(f"k{self._n}", spec, stdout, stderr)
        threading.Thread(target=self._run, args=(handle,), name=f"task-{self._n}").start()
        return handle

    def _run(self, handle: Handle) -> None:
        spec = handle.spec
        self.events.put(TaskStarted(handle.key, 0.0))
        if (spec.step, spec.attempt) in self.die:
            self.events.put(TaskExit(handle.key, -9))
            return
        self.records.write(spec.run_id, spec.step, spec.task_id, spec.attempt,
                           TaskRecord(spec.pathspec, spec.attempt, Ending.OK, artifacts={}))
        self.records.write_final(spec.run_id, spec.step, spec.task_id, spec.attempt)
        self.events.put(TaskExit(handle.key, 0))

    def kill(self, handle, grace=0.0):
        pass


def _orchestrator(tmp_path, die, retries):
    blobs = ThreadRecordingStore(open_blob_store(str(tmp_path / "ds")))
    path = flow_path("linear")
    graph = load_graph(path, "LinearFlow")
    TaskRecords(blobs, "LinearFlow").write("1", "_parameters", "0", 0, TaskRecord("LinearFlow/1/_parameters/0", 0, Ending.OK))
    executor = RecordingExecutor(blobs._inner, "LinearFlow", die)
    policies = {n: StepPolicy(retries=retries) for n in graph.nodes}
    out = io.StringIO()
    orchestrator = Orchestrator(graph, RunInfo("LinearFlow", "1", path, str(tmp_path / "ds"), "me"), blobs,
                                {"local": executor}, lambda step: "local", policies, Reporter(out))
    blobs.calls.clear()
    return orchestrator, blobs, out


def test_the_scheduling_thread_makes_no_store_call(tmp_path):
    """Reading each task's record, writing the "died" record of an attempt that wrote none (with
    its parents read for its foreach stack) and its final pointer: all off the loop thread."""
    from mfc.runner.dag import TaskRequest

    orchestrator, blobs, out = _orchestrator(tmp_path, die={("middle", 0)}, retries=1)
    main = threading.current_thread().name
    orchestrator.run([TaskRequest("start", (InputRef("_parameters", "0", 0),))])
    methods = Counter(method for _, method, _ in blobs.calls)
    assert methods["get_bytes"] >= 4, methods  # each task's record, and middle's parents
    assert any(key.endswith("middle/middle/0.json") and method == "put_new" for _, method, key in blobs.calls)
    on_main = [call for call in blobs.calls if call[0] == main]
    assert on_main == []
    recs = TaskRecords(blobs._inner, "LinearFlow")
    assert recs.read_task("1", "middle", "middle", 0).ending is Ending.DIED
    assert recs.read_task("1", "end", "end", 0).ending is Ending.OK
    assert "retrying" in out.getvalue()


def test_a_failed_runs_final_pointers_land_before_run_returns(tmp_path):
    """The final pointer of a failed task is written in the background, but run() returns (and
    so the run's status is written) only after it is stored."""
    from mfc.runner.dag import TaskRequest

    orchestrator, blobs, _ = _orchestrator(tmp_path, die={("middle", 0), ("middle", 1)}, retries=1)
    main = threading.current_thread().name
    with pytest.raises(RunFailed, match="killed by signal SIGKILL"):
        orchestrator.run([TaskRequest("start", (InputRef("_parameters", "0", 0),))])
    finals = [(thread, key) for thread, method, key in blobs.calls if key.endswith("middle/final.json")]
    assert finals and all(thread != main for thread, _ in finals)
    assert TaskRecords(blobs._inner, "LinearFlow").final_many("1", [("middle", "middle", None)])[0]["ending"] == "died"


@pytest.fixture(scope="module")
def moto():
    from moto_server import MotoServer

    with MotoServer() as server:
        yield server


def _foreach_children(store, run_id: str, count: int) -> list[InputRef]:
    """The records and artifacts of ``count`` finished ``body`` tasks of ForeachFlow."""
    from mfc.stores.artifacts import ArtifactStore

    arts, recs = ArtifactStore(store, "ForeachFlow"), TaskRecords(store, "ForeachFlow")
    refs = []
    for i in range(count):
        letter = f"l{i}"
        item = arts.save(letter)
        artifacts = {"item": item.to_json(), "position": arts.save(i).to_json(), "upper": arts.save(letter.upper()).to_json()}
        stack = [{"step": "start", "var": "letters", "num_splits": count, "index": i, "input": item.sha}]
        recs.write(run_id, "body", f"body-{i}", 0, TaskRecord(f"ForeachFlow/{run_id}/body/body-{i}", 0, Ending.OK,
                                                              artifacts=artifacts, foreach_stack=stack))
        recs.write_final(run_id, "body", f"body-{i}", 0)
        refs.append(InputRef("body", f"body-{i}"))
    return refs


def test_a_join_of_many_inputs_on_s3_reads_them_in_batches(moto, monkeypatch):
    """The join reads its parents' pointers and records in two batches and each artifact it
    asks of its inputs in one more, never one GET per input."""
    from mfc.flowload import flow_class, import_flow_file
    from mfc.runner import task as task_module
    from mfc.runner.taskspec import TaskSpec
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.s3 import S3BlobStore

    count = 30
    root = f"s3://{moto.new_bucket()}/ds"
    store = S3BlobStore(root, client=moto.client())
    inputs = _foreach_children(store, "7", count)
    counting = ThreadRecordingStore(store)
    monkeypatch.setattr(task_module, "open_blob_store", lambda _root: counting)
    monkeypatch.setattr(task_module, "run_ended", lambda blobs, spec: None)
    path = flow_path("foreach")
    cls, graph = flow_class(import_flow_file(path), "ForeachFlow", path), load_graph(path, "ForeachFlow")
    spec = TaskSpec(flow_file=path, flow_name="ForeachFlow", step="join", run_id="7", task_id="join",
                    datastore_root=root, inputs=inputs)
    assert task_module.execute(spec, cls, graph) == 0
    record = TaskRecords(store, "ForeachFlow").read_task("7", "join", "join", 0)
    arts = ArtifactStore(store, "ForeachFlow")
    assert arts.load(record.artifacts["pairs"][0]) == [(i, f"l{i}") for i in range(count)]
    assert arts.load(record.artifacts["inputs_seen"][0]) == [(i, f"l{i}") for i in range(count)]
    assert arts.load(record.artifacts["uppers"][0]) == "".join(f"L{i}" for i in range(count))
    reads = Counter(method for _, method, _ in counting.calls if method.startswith(("get", "open")))
    # pointers, records; position, item (input shares its sha), upper
    assert reads["get_many"] == 5, reads
    assert reads["get_bytes"] + reads["open"] + reads["get_range"] <= 3, reads


def test_a_damaged_input_of_a_batched_join_is_named(tmp_path, monkeypatch, capfd):
    """One input's object is damaged: the batch gives way and the join's failure names that
    input and artifact, as a one-by-one read would."""
    from mfc.flowload import flow_class, import_flow_file
    from mfc.runner import task as task_module
    from mfc.runner.taskspec import TaskSpec
    from mfc.stores.artifacts import data_key

    root = str(tmp_path / "ds")
    store = open_blob_store(root)
    inputs = _foreach_children(store, "8", 5)
    position = TaskRecords(store, "ForeachFlow").read_task("8", "body", "body-3", 0).artifacts["position"][0]
    with open(store.local_path(data_key("ForeachFlow", position)), "r+b") as fh:
        fh.seek(1)
        fh.write(b"\x00\x00\x00")
    monkeypatch.setattr(task_module, "run_ended", lambda blobs, spec: None)
    path = flow_path("foreach")
    cls, graph = flow_class(import_flow_file(path), "ForeachFlow", path), load_graph(path, "ForeachFlow")
    spec = TaskSpec(flow_file=path, flow_name="ForeachFlow", step="join", run_id="8", task_id="join",
                    datastore_root=root, inputs=inputs)
    assert task_module.execute(spec, cls, graph) == 1
    failure = TaskRecords(store, "ForeachFlow").read_task("8", "join", "join", 0).exception
    assert "ForeachFlow/8/body/body-3" in failure["message"] and "position" in failure["message"], failure
    capfd.readouterr()


def test_resume_clones_records_through_batched_create_only_writes(root):
    """Every cloned record goes in one create-only batch, then every final pointer in another;
    a record already in the new run is not overwritten."""
    from mfc.runner.resume import clone_records, plan_resume
    from mfc.stores.provider import open_metadata
    from tests.support import run_flow

    _, origin = run_flow(root, flow_path("foreach"))
    blobs = open_blob_store(str(root))
    graph = load_graph(flow_path("foreach"), "ForeachFlow")
    plan = plan_resume(graph, open_metadata(blobs), TaskRecords(blobs, "ForeachFlow"), "ForeachFlow", origin, None)
    assert len(plan.clones) == 7  # start, 4 bodies, join, end
    recording = ThreadRecordingStore(blobs)
    theirs = TaskRecord("ForeachFlow/99/body/body-2", 0, Ending.OK, artifacts={"mine": []})
    TaskRecords(blobs, "ForeachFlow").write("99", "body", "body-2", 0, theirs)
    clone_records(plan, TaskRecords(recording, "ForeachFlow"), "99", "ForeachFlow")
    writes = [(method, key) for _, method, key in recording.calls if method.startswith("put")]
    assert [method for method, _ in writes] == ["put_new", "put_new_many", "put_new_many"], writes
    recs = TaskRecords(blobs, "ForeachFlow")
    assert recs.read_task("99", "body", "body-2", 0).artifacts == {"mine": []}
    assert recs.read_task("99", "body", "body-1", 0).origin_run_id == origin
    found = recs.final_many("99", [(c.step, c.new_id, None) for c in plan.clones])
    assert all(record is not None for record in found)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_put_new_many_creates_only_what_is_missing(backend, tmp_path, request):
    if backend == "s3":
        from mfc.stores.s3 import S3BlobStore

        moto = request.getfixturevalue("moto")
        store = S3BlobStore(f"s3://{moto.new_bucket()}/p", client=moto.client())
    else:
        store = open_blob_store(str(tmp_path / "ds"))
    store.put_bytes("F/1/a.json", b"first")
    created = store.put_new_many({"F/1/a.json": b"second", "F/1/b.json": b"b", "F/1/c.json": b"c"})
    assert created == {"F/1/b.json", "F/1/c.json"}
    assert store.get_many(["F/1/a.json", "F/1/b.json"]) == {"F/1/a.json": b"first", "F/1/b.json": b"b"}


def test_resume_reads_the_origins_records_in_batches(root):
    """Planning a resume reads each step's final pointers and records in two batches, not one
    listing and one read per task."""
    from mfc.runner.resume import plan_resume
    from mfc.stores.provider import open_metadata
    from tests.support import run_flow

    _, origin = run_flow(root, flow_path("foreach"))
    recording = ThreadRecordingStore(open_blob_store(str(root)))
    graph = load_graph(flow_path("foreach"), "ForeachFlow")
    plan = plan_resume(graph, open_metadata(recording), TaskRecords(recording, "ForeachFlow"), "ForeachFlow", origin, None)
    assert sorted(c.task_id for c in plan.clones if c.step == "body") == [f"body-{i}" for i in range(4)]
    per_task = [key for _, method, key in recording.calls
                if method in ("list", "get_bytes") and "/body/body-" in key and not key.endswith((".stdout", ".stderr"))]
    assert per_task == [], per_task
    assert Counter(method for _, method, _ in recording.calls)["get_many"] >= 8  # 4 steps: pointers, records
