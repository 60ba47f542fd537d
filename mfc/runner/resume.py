"""Resume: a new run that clones the successful tasks of an earlier run up to a step and reruns
from there with the current code and the origin's parameters.

Cloned: every successful task of each step that is *not downstream* of the resume step (the
failed step, or the one named; with neither, as Metaflow does, every task of a successful
origin), except a step that a crashed run left part done and the steps after it. The resume step
and everything after it rerun in full — inside a foreach that means every task of the resumed
step, not only the ones that failed. Clones copy no data: a cloned record points at the same
content-addressed artifacts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mfc.exceptions import MalformedRecord, MfcError, MissingData
from mfc.graph import FlowGraph
from mfc.runner.dag import DagTracker, stack_indices
from mfc.runner.taskspec import InputRef
from mfc.stores.blob import BlobStore
from mfc.stores.provider import MetadataProvider
from mfc.stores.records import TaskRecords
from mfc.stores.taskrecord import TaskRecord
from mfc.taskid import iteration_of, sort_key, task_id_for

PARAMETERS_STEP = "_parameters"


@dataclass
class Clone:
    """A successful task of the origin run, copied into the new run."""

    step: str
    task_id: str  # its id in the origin run (numbered in runs made before derived ids)
    record: dict[str, Any]

    @property
    def new_id(self) -> str:
        """Its id in the new run: derived from its step and foreach indices, like every task's."""
        indices = stack_indices(self.record.get("foreach_stack") or [])
        return task_id_for(self.step, indices, iteration_of(self.task_id))


@dataclass
class ResumePlan:
    origin_run_id: str
    resume_step: str | None  # None: the origin succeeded, every task is cloned and nothing reruns
    clones: list[Clone]
    parameters: dict[str, Any]  # the origin's _parameters record
    notes: list[str] = field(default_factory=list)  # what the plan had to work around (damage), to tell the user
    damaged: list[str] = field(default_factory=list)  # shas of damaged objects the rerun steps store again


def graph_summary(graph: FlowGraph) -> dict[str, list]:
    """What a resume compares between runs: each step's type, targets and foreach variable."""
    return {n.name: [n.type, list(n.out_funcs), n.foreach_var, n.is_join] for n in graph.nodes.values()}


def downstream(graph: FlowGraph, step: str) -> set[str]:
    seen, todo = set(), [step]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(graph[name].out_funcs)
    return seen


def _first_failed_step(graph: FlowGraph, failed: set[str]) -> str | None:
    for node in graph:  # topological order
        if node.name in failed:
            return node.name
    return None


def plan_resume(graph: FlowGraph, metadata: MetadataProvider, records: TaskRecords, flow: str,
                origin_run_id: str | None, step: str | None) -> ResumePlan:
    """Pick the origin run and the resume step, check the graph still matches, list the clones."""
    if origin_run_id is None:
        ids = metadata.run_ids(flow)
        if not ids:
            raise MfcError(f"no earlier run of {flow} to resume in {records.blobs.root}")
        origin_run_id = ids[0]
    origin = metadata.run(flow, origin_run_id)
    if origin is None:
        raise MfcError(f"--origin-run-id {origin_run_id}: no run {flow}/{origin_run_id} in {records.blobs.root}")
    if origin["status"] == "running":
        driver = origin.get("driver") or {}
        who = f" (driven by pid {driver.get('pid')} on host {driver.get('host')})" if driver.get("pid") else ""
        raise MfcError(f"run {flow}/{origin_run_id} is still running{who}; resume it once it has ended")
    if step is not None and step not in graph:
        raise MfcError(f"resume step {step!r}: no such step (steps: {', '.join(graph.nodes)})")
    _check_graph(graph, origin.get("graph"), flow, origin_run_id, step)

    ok_tasks: dict[str, list[Clone]] = {}
    failed: set[str] = set()
    notes: list[str] = []
    for name in records.steps(origin_run_id):
        if name.startswith("_"):
            continue
        task_ids = records.tasks(origin_run_id, name)
        for task_id, found in zip(task_ids, records.ended_many(origin_run_id, name, task_ids), strict=True):
            record = found if isinstance(found, dict) else None
            if isinstance(found, MalformedRecord):
                notes.append(f"{found}: the task reruns")
            if record is not None and record.get("status") == "ok":
                ok_tasks.setdefault(name, []).append(Clone(name, task_id, record))
            else:
                failed.add(name)
    # A step the origin left part done (a crash between two launches) reruns in full, and so
    # does everything after it: cloning part of it would leave its other tasks never launched.
    partial = unfinished_steps(graph, [c for tasks in ok_tasks.values() for c in tasks]) & set(ok_tasks)
    for name in set().union(*(downstream(graph, p) for p in partial)):
        ok_tasks.pop(name, None)
    parameters = records.read(origin_run_id, PARAMETERS_STEP, "0", 0)
    if parameters is None:
        raise MfcError(f"run {flow}/{origin_run_id} has no parameters record; it cannot be resumed")
    damaged = _damaged(records, flow, origin_run_id, parameters, ok_tasks)
    params_pathspec = f"{flow}/{origin_run_id}/{PARAMETERS_STEP}/0"
    if params_pathspec in damaged:
        raise MfcError(f"cannot resume run {flow}/{origin_run_id}: its parameters are damaged: {damaged[params_pathspec][0]}")
    damaged_steps: set[str] = set()  # steps whose records are fine but whose data is not: never cloned
    damaged_shas: set[str] = set()
    for name, tasks in ok_tasks.items():
        for clone in tasks:
            damage = damaged.get(f"{flow}/{origin_run_id}/{name}/{clone.task_id}")
            if not damage:
                continue
            damaged_shas.update(exc.sha for exc in damage if exc.sha and not isinstance(exc, MissingData))
            if name not in damaged_steps:
                notes.append(f"{damage[0]}; step {name} reruns instead of being cloned")
                damaged_steps.add(name)
    if step is None:
        step = _first_failed_step(graph, (failed | damaged_steps) & set(graph.nodes))
        if step is None:
            missing = [n.name for n in graph if n.name not in ok_tasks]
            step = missing[0] if missing else None  # None: every task succeeded; clone them all, as Metaflow does
    rerun = downstream(graph, step) if step is not None else set()
    for name in damaged_steps - rerun:
        rerun |= downstream(graph, name)
    if rerun:
        step = next(n.name for n in graph if n.name in rerun)  # the earliest step that reruns
    blocking = sorted((failed - rerun) & set(graph.nodes))
    if blocking:
        raise MfcError(f"cannot resume from {step!r}: step {blocking[0]} failed in run {origin_run_id} and runs before it; "
                       f"resume from {blocking[0]} instead")
    clones = [c for name, tasks in ok_tasks.items() if name not in rerun for c in tasks]
    order = {name: i for i, name in enumerate(n.name for n in graph)}
    clones.sort(key=lambda c: (order.get(c.step, len(order)), sort_key(c.task_id)))
    return ResumePlan(origin_run_id, step, clones, parameters, notes, sorted(damaged_shas))


def _damaged(records: TaskRecords, flow: str, run_id: str, parameters: dict[str, Any],
             ok_tasks: dict[str, list[Clone]]) -> dict[str, list[Any]]:
    """Pathspec -> the CorruptArtifacts of the parameters and successful tasks whose objects are
    missing or damaged (checked cheaply: see :func:`mfc.stores.verify.check_object`)."""
    from mfc.stores.verify import damaged_objects

    named = [(f"{flow}/{run_id}/{PARAMETERS_STEP}/0", parameters)]
    named += [(f"{flow}/{run_id}/{c.step}/{c.task_id}", c.record) for tasks in ok_tasks.values() for c in tasks]
    return damaged_objects(records.blobs, flow, named)


def unfinished_steps(graph: FlowGraph, done: list[Clone]) -> set[str]:
    """Steps that the origin's successful tasks made ready but that did not finish every task
    (a crashed or stopped run: foreach items never launched, a join never reached)."""
    tracker = DagTracker(graph)
    wanted = Counter({"start": 1})
    for clone in done:  # any order: a join counts its arrivals
        if clone.step not in graph:
            continue
        try:
            ready = tracker.task_done(clone.step, InputRef(clone.step, clone.new_id), clone.record)
        except (KeyError, IndexError, TypeError):  # a record from another shape of the flow
            continue
        wanted.update(request.step for request in ready)
    finished = Counter(c.step for c in done)
    return {name for name, count in wanted.items() if finished[name] < count}


def _check_graph(graph: FlowGraph, recorded: dict[str, list] | None, flow: str, run_id: str, step: str | None) -> None:
    if recorded is None:
        return
    current = graph_summary(graph)
    for name, shape in recorded.items():
        now = current.get(name)
        if now is None:
            raise MfcError(f"cannot resume run {flow}/{run_id}: step {name!r} no longer exists in the flow")
        if now != shape:
            raise MfcError(
                f"cannot resume run {flow}/{run_id}: step {name!r} changed since that run "
                f"(was {_describe(shape)}, now {_describe(now)}); start a new run instead"
            )
    added = sorted(set(current) - set(recorded))
    if added:
        raise MfcError(f"cannot resume run {flow}/{run_id}: step {added[0]!r} is new since that run; start a new run instead")


def _describe(shape: list) -> str:
    kind, targets, foreach, _ = shape
    arrow = ", ".join(targets) or "nothing"
    return f"{kind} -> {arrow}" + (f" (foreach {foreach})" if foreach else "")


def discard_damaged(plan: ResumePlan, blobs: BlobStore, flow: str) -> None:
    """Remove the damaged objects the plan found (after a second, full read confirms the damage),
    so the steps that rerun store them afresh: a content-addressed write skips a key that exists,
    which would leave the damage in place for the new run too."""
    from mfc.stores.artifacts import data_key
    from mfc.stores.verify import check_object

    for sha in plan.damaged:
        found = check_object(blobs, flow, sha)
        if found is not None and not isinstance(found, MissingData):
            blobs.delete(data_key(flow, sha))


def clone_records(plan: ResumePlan, records: TaskRecords, run_id: str, flow: str) -> None:
    """Write the cloned task records (and the parameters) into the new run, each under its
    derived task id as attempt 0, the task's final attempt."""
    records.write(run_id, PARAMETERS_STEP, "0", 0, {**plan.parameters, "pathspec": f"{flow}/{run_id}/{PARAMETERS_STEP}/0"})
    entries = []
    for clone in plan.clones:
        record = TaskRecord.from_dict(clone.record)
        record.attempt = 0
        record.pathspec = f"{flow}/{run_id}/{clone.step}/{clone.new_id}"
        record.origin_run_id = plan.origin_run_id
        record.origin_pathspec = clone.record.get("origin_pathspec") or clone.record["pathspec"]
        entries.append((clone.step, clone.new_id, 0, record))
    # Every record lands before any pointer names it; both batches are create-only.
    records.write_many(run_id, entries)
    records.write_final_many(run_id, [(step, task_id, 0) for step, task_id, _, _ in entries])
