"""A 1,000-input join's input reading on the sandbox's S3 (a moto server), issue 9: the join
task's own code (its parents' final pointers and records in two batched reads, each artifact it
asks of its inputs in one more: :class:`mfc.runner.context.JoinBatch`) against the access pattern
before it, kept here as the reference: one GET at a time, a pointer, a record, then each input's
artifacts as the join asks for them. Both in one invocation, interleaved, on the same bucket;
then the same behind 10 ms of one-way latency (a network to S3), with fewer inputs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from figures import Figure
from procs import BenchError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from suite_metadata import batched_against_serial  # noqa: E402

FLOW = "ForeachFlow"
FLOW_FILE = HERE.parent / "tests" / "flows" / "foreach.py"
RUN = "1"


def _write_children(root: str, count: int) -> None:
    """``count`` finished foreach bodies of ForeachFlow: artifacts, records, final pointers."""
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.records import TaskRecords
    from mfc.stores.taskrecord import Ending, TaskRecord

    blobs = open_blob_store(root)
    arts, records = ArtifactStore(blobs, FLOW), TaskRecords(blobs, FLOW)

    def one(i: int) -> None:
        letter = f"l{i}"
        item = arts.save(letter)
        artifacts = {"item": item.to_json(), "position": arts.save(i).to_json(), "upper": arts.save(letter.upper()).to_json()}
        stack = [{"step": "start", "var": "letters", "num_splits": count, "index": i, "input": item.sha}]
        records.write(RUN, "body", f"body-{i}", 0, TaskRecord(f"{FLOW}/{RUN}/body/body-{i}", 0, Ending.OK,
                                                              artifacts=artifacts, foreach_stack=stack))
        records.write_final(RUN, "body", f"body-{i}", 0)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))


def _join_reads(inputs: list[Any]) -> tuple[list, list, str]:
    """What the flow's join step reads of its inputs."""
    pairs = [(inp.position, inp.item) for inp in inputs]
    seen = [(inp.index, inp.input) for inp in inputs]
    return pairs, seen, "".join(inp.upper for inp in inputs)


def _batched(root: str, count: int) -> tuple[list, list, str]:
    """The join task's own input reading (``mfc.runner.task._prepare``), then its step's reads."""
    from mfc.graph import load_graph
    from mfc.runner.task import _prepare
    from mfc.runner.taskspec import InputRef, TaskSpec
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.records import TaskRecords

    blobs = open_blob_store(root)
    graph = load_graph(str(FLOW_FILE), FLOW)
    spec = TaskSpec(flow_file=str(FLOW_FILE), flow_name=FLOW, step="join", run_id=RUN, task_id="join",
                    datastore_root=root, inputs=[InputRef("body", f"body-{i}") for i in range(count)])
    _, _, inputs = _prepare(spec, graph, TaskRecords(blobs, FLOW), ArtifactStore(blobs, FLOW), set())
    return _join_reads(inputs)


class _OneAtATime:
    """A parent as a join read it before issue 9: each artifact loaded alone when asked for."""

    def __init__(self, arts: Any, record: dict[str, Any]) -> None:
        self.arts = arts
        self.refs = record["artifacts"]
        self.frame = record["foreach_stack"][-1]
        self.cache: dict[str, Any] = {}

    def _load(self, sha: str) -> Any:
        if sha not in self.cache:
            self.cache[sha] = self.arts.load(sha)
        return self.cache[sha]

    def __getattr__(self, name: str) -> Any:
        return self._load(self.refs[name][0])

    @property
    def index(self) -> int:
        return self.frame["index"]

    @property
    def input(self) -> Any:
        return self._load(self.frame["input"])


def _one_at_a_time(root: str, count: int) -> tuple[list, list, str]:
    """The reads a join made before issue 9, in the same order, one GET each."""
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.records import TaskRecords, parse_record

    blobs = open_blob_store(root)
    records, arts = TaskRecords(blobs, FLOW), ArtifactStore(blobs, FLOW)
    inputs = []
    for i in range(count):
        pointer = parse_record(blobs.get_bytes(records.final_key(RUN, "body", f"body-{i}")), "pointer")
        record = records.read(RUN, "body", f"body-{i}", pointer["attempt"])
        assert record is not None
        inputs.append(_OneAtATime(arts, record))
    return _join_reads(inputs)


def _compare(root: str, count: int, reps: int) -> tuple[list[float], list[float]]:
    """Wall times of ``reps`` batched join readings and ``reps`` one-at-a-time ones, alternating."""
    expected = ([(i, f"l{i}") for i in range(count)], [(i, f"l{i}") for i in range(count)],
                "".join(f"L{i}" for i in range(count)))
    sides: list[tuple[Callable[[str, int], tuple], list[float]]] = [(_batched, []), (_one_at_a_time, [])]
    _batched(root, count)  # warm-up: connections, imports
    for index in range(reps):
        for read, times in sides if index % 2 == 0 else reversed(sides):
            started = time.perf_counter()
            seen = read(root, count)
            times.append(time.perf_counter() - started)
            if seen != expected:
                raise BenchError(f"{read.__name__} read the join's inputs wrong")
    return sides[0][1], sides[1][1]


def bench_join_s3(ctx: Any) -> list[Figure]:
    """A 1,000-input join's input reading on moto S3, batched against one GET at a time."""
    return batched_against_serial(ctx, "bench-join", "pointers, records, then each artifact of every input: get_many",
                                  _write_children, _compare,
                                  ("join of {} inputs, input reading on moto S3", "join of {} inputs, S3 10 ms away"),
                                  (ctx.n(1000, 40), ctx.n(200, 20)))
