"""Task identity: ids derived from the step and the foreach indices, final-attempt pointers,
split files, typed create-only task records, and runs made before all that still reading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mfc.client import Flow, Run, Step, metadata, namespace
from mfc.stores.records import TaskRecords
from mfc.stores.taskrecord import Ending, TaskRecord
from mfc.taskid import indices_of, sort_key, task_id_for
from tests.support import describe, flow_path, mfc, records, run_flow, write_flow

pytestmark = pytest.mark.usefixtures("client_namespace")


@pytest.fixture
def client_namespace():
    namespace(None)
    yield
    namespace(None)


def _ids(root: Path, flow: str, run_id: str) -> dict[str, list[str]]:
    recs = records(root, flow)
    return {step: recs.tasks(run_id, step) for step in recs.steps(run_id)}


# -- the scheme ---------------------------------------------------------------------------------
def test_task_id_scheme_round_trips_and_orders_by_index():
    assert task_id_for("start", ()) == "start"
    assert task_id_for("cell", (1, 2)) == "cell-1-2"
    assert indices_of("cell-1-2", "cell") == (1, 2)
    assert indices_of("cell", "cell") == ()
    assert indices_of("7", "cell") is None and indices_of("xcell-1", "cell") is None
    assert sorted(["body-10", "body-9", "body-2"], key=sort_key) == ["body-2", "body-9", "body-10"]
    assert sorted(["10", "9", "2"], key=sort_key) == ["2", "9", "10"]


@pytest.mark.parametrize("name, flow, expected", [
    ("linear", "LinearFlow", {"start": ["start"], "middle": ["middle"], "end": ["end"]}),
    ("branch", "BranchFlow", {"start": ["start"], "b": ["b"], "a": ["a"], "a2": ["a2"], "a1": ["a1"],
                              "ajoin": ["ajoin"], "join": ["join"], "end": ["end"]}),
    ("foreach", "ForeachFlow", {"start": ["start"], "body": ["body-0", "body-1", "body-2"], "join": ["join"],
                                "end": ["end"]}),
    ("nested_foreach", "NestedForeachFlow", {
        "start": ["start"], "outer_body": ["outer_body-0", "outer_body-1"],
        "inner_body": [f"inner_body-{i}-{j}" for i in range(2) for j in range(3)],
        "inner_join": ["inner_join-0", "inner_join-1"], "outer_join": ["outer_join"], "end": ["end"]}),
    ("mixed_shapes", "MixedShapesFlow", {
        "start": ["start"], "fan": ["fan"], "plain": ["plain"], "item": ["item-0", "item-1"],
        "double": ["double-0", "double-1"], "square": ["square-0", "square-1"],
        "item_join": ["item_join-0", "item_join-1"], "fan_join": ["fan_join"], "join": ["join"], "end": ["end"]}),
])
def test_task_ids_are_derived_and_the_same_in_every_run(tmp_path, name, flow, expected):
    root = tmp_path / "ds"
    _, first = run_flow(root, flow_path(name))
    _, second = run_flow(root, flow_path(name))
    assert first != second
    ids = _ids(root, flow, first)
    if name == "foreach":
        expected = {**expected, "body": [f"body-{i}" for i in range(len(ids["body"]))]}
    assert ids == expected
    assert _ids(root, flow, second) == ids
    recs = records(root, flow)
    for step, task_ids in ids.items():
        for task_id in task_ids:  # every task names the attempt that ended it
            assert json.loads(recs.blobs.get_bytes(recs.final_key(first, step, task_id))) == {"attempt": 0}
            record = recs.read_task(first, step, task_id, 0)
            assert record.ending is Ending.OK and record.format == 1
            assert task_id == task_id_for(step, [f["index"] for f in record.foreach_stack])
    metadata(str(root))
    run = Run(f"{flow}/{first}")
    assert [s.id for s in run] == list(expected)  # launch order: self.next(b, a) launches b first
    assert {s.id: [t.id for t in s] for s in run} == expected


RETRY_ONCE = '''
from mfc import FlowSpec, retry, step


class RetryOnceFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(12))
        self.next(self.body, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def body(self):
        from mfc import current
        if self.input == 3 and current.retry_count == 0:
            raise RuntimeError("first try fails")
        self.out = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.outs = [i.out for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def test_a_retry_is_an_attempt_of_the_same_task_and_the_join_reads_its_final_attempt(tmp_path):
    root = tmp_path / "ds"
    _, run_id = run_flow(root, write_flow(tmp_path, RETRY_ONCE))
    recs = records(root, "RetryOnceFlow")
    assert recs.tasks(run_id, "body") == [f"body-{i}" for i in range(12)]  # by index: body-10 after body-9
    assert recs.attempts(run_id, "body", "body-3") == [0, 1]
    assert json.loads(recs.blobs.get_bytes(recs.final_key(run_id, "body", "body-3"))) == {"attempt": 1}
    assert recs.read_task(run_id, "body", "body-3", 0).ending is Ending.FAILED
    metadata(str(root))
    run = Run(f"RetryOnceFlow/{run_id}")
    assert run["join"].task.data.outs == list(range(12))
    assert [t.index for t in run["body"]] == list(range(12))


# -- split files --------------------------------------------------------------------------------
WIDE = '''
from mfc import FlowSpec, Parameter, step


class WideFlow(FlowSpec):
    width = Parameter("width", default=10)

    @step
    def start(self):
        self.items = [f"item-{i}-" + "x" * 40 for i in range(self.width)]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.n = len(self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.n for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass
'''


@pytest.mark.slow
def test_foreach_children_read_their_own_item_of_the_split_file(tmp_path):
    width = int(os.environ.get("MFC_TEST_WIDE_FOREACH", "2000"))
    root = tmp_path / "ds"
    counts = tmp_path / "reads.txt"
    _, run_id = run_flow(root, write_flow(tmp_path, WIDE), "--width", str(width), timeout=600,
                         extra=("--max-num-splits", str(width)), env={"MFC_COUNT_READS": str(counts)})
    recs = records(root, "WideFlow")
    start = recs.read(run_id, "start", "start", 0)
    assert "items" not in start["foreach"] and start["foreach"]["num_splits"] == width
    split = json.loads(recs.blobs.get_bytes(start["foreach"]["split"]))  # a plain JSON array: a Map ItemReader reads it
    assert len(split) == width
    body_7 = recs.read(run_id, "body", "body-7", 0)
    assert body_7["foreach_stack"][0]["input"] == split[7]
    assert len(recs.blobs.get_bytes(recs.key(run_id, "start", "start", 0, "json"))) < 2_000  # the items are not in it

    lines = [line.split(" ", 2) for line in counts.read_text().splitlines()]
    assert len(lines) == width + 3
    bodies = [int(n) for n, _, path in lines if path.split("/")[2] == "body"]
    # Each child reads its parent's small record, its own 66-byte split entry and its item: a few kB,
    # whatever the width (the whole split list was 67 bytes an item, 134 kB a child at 2,000).
    assert max(bodies) < 8_000, max(bodies)
    total = sum(int(n) for n, _, _ in lines)
    assert total < width * 10_000, total
    metadata(str(root))
    assert Run(f"WideFlow/{run_id}")["join"].task.data.total == sum(len(f"item-{i}-") + 40 for i in range(width))


# -- typed, create-only records -----------------------------------------------------------------
def test_a_second_writer_of_the_same_attempt_is_refused(tmp_path):
    from mfc.stores.blob import open_blob_store

    recs = TaskRecords(open_blob_store(str(tmp_path)), "F")
    died = TaskRecord("F/1/s/s", 0, Ending.DIED, exception={"type": "TaskDied", "message": "killed by signal SIGKILL"})
    late = TaskRecord("F/1/s/s", 0, Ending.OK, artifacts={"x": ["0" * 64, 1]})
    assert recs.write("1", "s", "s", 0, died) is True
    assert recs.write("1", "s", "s", 0, late) is False
    kept = recs.read_task("1", "s", "s", 0)
    assert kept.ending is Ending.DIED and kept.died and kept.status == "failed"
    assert recs.read("1", "s", "s", 0)["died"] is True  # readers of the dict form see what they did
    assert recs.write_final("1", "s", "s", 0) and not recs.write_final("1", "s", "s", 1)


def test_a_task_whose_attempt_was_recorded_first_by_the_run_does_not_overwrite_it(tmp_path, capfd, monkeypatch):
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph
    from mfc.runner.task import LATE_EXIT_CODE, execute
    from mfc.runner.taskspec import InputRef, TaskSpec

    root = tmp_path / "ds"
    _, run_id = run_flow(root, flow_path("linear"))
    recs = records(root, "LinearFlow")
    before = recs.blobs.get_bytes(recs.key(run_id, "end", "end", 0, "json"))
    # The run is over, so a late task would be refused before anything; here it races the run's
    # own record of its end instead (the run still going), and gets as far as writing its record.
    import mfc.runner.task as task_module

    monkeypatch.setattr(task_module, "run_ended", lambda blobs, spec: None)
    path = flow_path("linear")
    module = import_flow_file(path)
    spec = TaskSpec(flow_file=path, flow_name="LinearFlow", step="end", run_id=run_id, task_id="end",
                    datastore_root=str(root), inputs=[InputRef("middle", "middle")])
    code = execute(spec, flow_class(module, "LinearFlow", path), load_graph(path, "LinearFlow"))
    assert code == LATE_EXIT_CODE
    assert "already has a record" in capfd.readouterr().err
    assert recs.blobs.get_bytes(recs.key(run_id, "end", "end", 0, "json")) == before


def test_task_record_reads_old_untyped_records_and_round_trips():
    old_ok = {"pathspec": "F/1/s/2", "attempt": 0, "status": "ok", "artifacts": {}, "caught": {"type": "E"}}
    old_died = {"pathspec": "F/1/s/2", "attempt": 1, "status": "failed", "died": True, "artifacts": {},
                "exception": {"type": "TaskDied", "message": "timed out after 1s (@timeout)"}, "queued_s": 2.5}
    assert TaskRecord.from_dict(old_ok).ending is Ending.CAUGHT
    died = TaskRecord.from_dict(old_died)
    assert died.ending is Ending.DIED and died.format == 0 and died.extra == {"queued_s": 2.5}
    again = TaskRecord.from_json(died.to_json(), "here")
    assert again == TaskRecord.from_dict(died.to_dict()) and again.to_dict()["queued_s"] == 2.5
    from mfc.exceptions import MalformedRecord

    with pytest.raises(MalformedRecord, match="here"):
        TaskRecord.from_json(b'{"status": "ok", "artifacts": {}, "ending": "exploded"}', "here")


# -- runs made before derived ids ---------------------------------------------------------------
def _make_legacy(root: Path, flow: str, run_id: str, graph_order: list[str]) -> dict[tuple[str, str], str]:
    """Rewrite a run as the previous version wrote it: numbered task ids in launch order, untyped
    records, the split list inside the foreach's record, no final pointers or split files."""
    recs = records(root, flow)
    mapping: dict[tuple[str, str], str] = {}
    number = 1
    for step in graph_order:
        for task_id in recs.tasks(run_id, step):
            mapping[(step, task_id)] = str(number)
            number += 1
    for (step, task_id), new in mapping.items():
        old_dir = Path(recs.blobs.local_path(f"{flow}/{run_id}/{step}/{task_id}/x")).parent
        for name in os.listdir(old_dir):
            path = old_dir / name
            if name == "final.json" or name.endswith(".split.json"):
                continue
            if name.endswith(".json"):
                record = json.loads(path.read_text())
                for key in ("ending", "format"):
                    record.pop(key, None)
                record["pathspec"] = f"{flow}/{run_id}/{step}/{new}"
                split = record.get("foreach")
                if split and "split" in split:
                    split["items"] = json.loads(recs.blobs.get_bytes(split.pop("split")))
                path.write_text(json.dumps(record))
        for name in os.listdir(old_dir):
            if name == "final.json" or name.endswith(".split.json"):
                os.remove(old_dir / name)
        old_dir.rename(old_dir.parent / new)
    return mapping


def test_a_run_made_before_derived_ids_reads_through_client_logs_dump_and_resume(tmp_path):
    root = tmp_path / "ds"
    source = RETRY_ONCE.replace("@retry(times=1, minutes_between_retries=0)", "").replace(
        "self.input == 3 and current.retry_count == 0", "self.input == 11 and __import__('os').environ.get('FAIL_BODY')")
    path = write_flow(tmp_path, source)
    # One task at a time: items 0-10 succeed, item 11 fails: a failed run to resume.
    _, run_id = run_flow(root, path, extra=("--max-workers", "1"), expect=1, env={"FAIL_BODY": "1"})
    order = ["start", "body"]
    mapping = _make_legacy(root, "RetryOnceFlow", run_id, order)
    assert sorted(mapping.values(), key=int) == [str(i) for i in range(1, 14)]
    recs = records(root, "RetryOnceFlow")
    assert recs.tasks(run_id, "body") == [str(i) for i in range(2, 14)]  # by number, not text: 10 after 9

    metadata(str(root))
    run = Run(f"RetryOnceFlow/{run_id}")
    assert [s.id for s in run] == ["start", "body"]
    body = run["body"]
    assert [t.id for t in body] == [str(i) for i in range(2, 14)] and "13" in body and len(body) == 12
    assert [t.index for t in body] == list(range(12))
    assert body["12"].data.out == 10
    assert Step(f"RetryOnceFlow/{run_id}/body").task.id == "2"
    assert body["13"].exception is not None and "first try fails" in str(body["13"].exception)

    logs = mfc(root, "logs", f"RetryOnceFlow/{run_id}/body/13")
    assert logs.returncode == 0 and "first try fails" in logs.stderr, describe(logs)
    dump = mfc(root, "dump", f"RetryOnceFlow/{run_id}/body/12")
    assert dump.returncode == 0 and "10" in dump.stdout, describe(dump)

    # Resume from the old run: body reruns from the old start record (split list inline).
    resumed = mfc(root, "resume", path, "--origin-run-id", run_id, timeout=120)
    assert resumed.returncode == 0, describe(resumed)
    new_id = Flow("RetryOnceFlow").latest_run.id
    assert new_id != run_id
    new = Run(f"RetryOnceFlow/{new_id}")
    assert new["start"].task.id == "start" and new["start"].task.origin_pathspec == f"RetryOnceFlow/{run_id}/start/1"
    assert [t.id for t in new["body"]] == [f"body-{i}" for i in range(12)]
    assert new["body"]["body-11"].data.out == 11 and new["join"].task.data.outs == list(range(12))


def test_a_timed_out_attempt_is_caught_by_its_typed_ending_not_its_message(tmp_path, monkeypatch, capfd):
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph
    from mfc.runner.task import execute
    from mfc.runner.taskspec import InputRef, TaskSpec

    root = tmp_path / "ds"
    path = flow_path("timeouts")
    _, run_id = run_flow(root, path, "--mode", "combo")
    recs = records(root, "TimeoutFlow")
    endings = [recs.read_task(run_id, "guarded", "guarded", a).ending for a in recs.attempts(run_id, "guarded", "guarded")]
    assert endings == [Ending.TIMED_OUT, Ending.TIMED_OUT, Ending.CAUGHT]
    assert recs.read_task(run_id, "guarded", "guarded", 2).caught["type"] == "TimeoutException"
    assert json.loads(recs.blobs.get_bytes(recs.final_key(run_id, "guarded", "guarded"))) == {"attempt": 2}

    # The fallback's exception follows how the killed attempt ended, whatever its message says.
    import mfc.runner.task as task_module

    monkeypatch.setattr(task_module, "run_ended", lambda blobs, spec: None)
    module = import_flow_file(path)
    cls, graph = flow_class(module, "TimeoutFlow", path), load_graph(path, "TimeoutFlow")
    for attempt, ending, kind in ((3, "timed_out", "TimeoutException"), (4, "died", "TaskKilled")):
        spec = TaskSpec(flow_file=path, flow_name="TimeoutFlow", step="guarded", run_id=run_id, task_id="guarded",
                        datastore_root=str(root), inputs=[InputRef("pick", "pick")], attempt=attempt,
                        catch_fallback="the worker went away", fallback_ending=ending)
        assert execute(spec, cls, graph) == 0
        assert recs.read_task(run_id, "guarded", "guarded", attempt).caught["type"] == kind
    capfd.readouterr()


def test_the_runs_record_of_a_death_yields_to_the_tasks_own_record_that_came_first(tmp_path):
    """The orchestrator finds no record when a task ends, but the task's own record lands before
    the orchestrator's "died" record: the task's stands, the refusal is reported."""
    import io

    from mfc.graph import load_graph
    from mfc.runner.executor import Handle, TaskExit
    from mfc.runner.orchestrator import Orchestrator, RunInfo, _Pending, _Running
    from mfc.runner.policy import StepPolicy
    from mfc.runner.progress import Reporter
    from mfc.runner.taskspec import InputRef, TaskSpec
    from mfc.stores.blob import open_blob_store

    blobs = open_blob_store(str(tmp_path / "ds"))
    path = flow_path("linear")
    graph = load_graph(path, "LinearFlow")
    out = io.StringIO()
    orchestrator = Orchestrator(graph, RunInfo("LinearFlow", "5", path, str(tmp_path / "ds"), "me"), blobs, {},
                                lambda step: "local", {n: StepPolicy() for n in graph.nodes}, Reporter(out))
    spec = TaskSpec(flow_file=path, flow_name="LinearFlow", step="middle", run_id="5", task_id="middle",
                    datastore_root=str(tmp_path / "ds"), inputs=[InputRef("start", "start")])
    recs = TaskRecords(blobs, "LinearFlow")
    recs.write("5", "start", "start", 0, TaskRecord("LinearFlow/5/start/start", 0, Ending.OK))
    from mfc.runner.dag import TaskRequest
    from mfc.runner.settle import settle_record

    class LateRecord(TaskRecords):
        """The task's own record lands just after the run found none."""

        looked = False

        def read_task(self, *args):
            if not self.looked:
                self.looked = True
                recs.write("5", "middle", "middle", 0,
                           TaskRecord("LinearFlow/5/middle/middle", 0, Ending.OK, artifacts={"x": []}))
                return None
            return super().read_task(*args)

    running = _Running(_Pending(0.0, 0, TaskRequest("middle", ()), "middle"), Handle("k", spec, "o", "e"), None, None)
    death = orchestrator._death(running, TaskExit("k", -9))
    record, note = settle_record(graph, LateRecord(blobs, "LinearFlow"), spec, death)
    assert record.ending is Ending.OK and record.artifacts == {"x": []}
    assert recs.read_task("5", "middle", "middle", 0).ending is Ending.OK
    assert "its own record came in before the run's (killed by signal SIGKILL)" in note
