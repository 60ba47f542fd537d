"""The task entrypoint: run one step of a flow from a TaskSpec and record the result.

Every executor runs this: the local executor calls :func:`execute` in a forked child, the
container and Batch executors run ``python -m mfc.runner.task --spec '<json>'``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any

from mfc.current import current
from mfc.decorators import card_decorators, project_info, step_decorators
from mfc.exceptions import CaughtException, MfcError, SwitchError, TaskKilled, TimeoutException
from mfc.graph import FlowGraph
from mfc.parameters import flow_parameters
from mfc.runner.context import Inputs, InputView, JoinBatch, TaskContext
from mfc.runner.dag import child_stack
from mfc.runner.executor import queue_times
from mfc.runner.readcount import counted
from mfc.runner.readcount import report as report_reads
from mfc.runner.secrets import SecretsError
from mfc.runner.taskspec import TaskSpec
from mfc.stores.artifacts import ArtifactStore
from mfc.stores.blob import BlobStore, open_blob_store
from mfc.stores.metadata import BlobMetadata
from mfc.stores.records import TaskRecords
from mfc.stores.service_client import ServiceError
from mfc.stores.service_metadata import task_records
from mfc.stores.specs import read_spec
from mfc.stores.taskrecord import Ending, TaskRecord

IMMUTABLE = (int, float, str, bytes, bool, type(None), complex, frozenset)


class StepFailed(Exception):
    """Raised inside the task for a step that broke the flow's rules (no self.next, ...)."""


def describe_exception(exc: BaseException, flow_file: str) -> dict[str, Any]:
    """Type, message, traceback and the flow-file line where the exception happened."""
    frames = traceback.extract_tb(exc.__traceback__)
    flow_path = os.path.abspath(flow_file)
    user = [f for f in frames if os.path.abspath(f.filename) == flow_path]
    frame = user[-1] if user else None  # never point a user at mfc's own code
    if isinstance(exc, SystemExit):
        message = f"the step called sys.exit({exc.code!r})"
    elif isinstance(exc, MemoryError) and not str(exc):
        message = "out of memory"
    else:
        message = str(exc)
    kind = type(exc)
    return {
        "type": kind.__name__,
        "qualified_type": f"{kind.__module__}.{kind.__qualname__}",
        "message": message,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "where": f"{os.path.basename(frame.filename)}:{frame.lineno}" if frame else "",
        "source": (frame.line or "") if frame else "",
    }


def _prepare(spec: TaskSpec, graph: FlowGraph, records: TaskRecords, store: ArtifactStore,
             params: set[str]) -> tuple[dict[str, Any], list[dict], Inputs | None]:
    """Inherited artifact index, foreach stack and (for joins) the inputs."""
    node = graph[spec.step]
    parents = []
    found = records.final_many(spec.run_id, [(ref.step, ref.task_id, ref.attempt) for ref in spec.inputs])
    for ref, record in zip(spec.inputs, found, strict=True):
        if record is None:
            raise MfcError(f"input {spec.run_id}/{ref.step}/{ref.task_id} has no record in {store.blobs.root}")
        parents.append((ref, record))
    stack = child_stack(graph, spec.step, parents, spec.split_index, records.foreach_item)
    if not node.is_join:
        return dict(parents[0][1]["artifacts"]), stack, None
    batch = JoinBatch(store)  # an artifact asked of one input is read for the others in the same batch
    inputs = Inputs(InputView(store, ref.step, ref.task_id, rec["artifacts"], rec.get("foreach_stack") or [],
                              _input_pathspec(spec, ref), batch) for ref, rec in parents)
    first = parents[0][1]
    index = {p: first["artifacts"][p] for p in params if p in first["artifacts"]}
    return index, stack, inputs


def _input_pathspec(spec: TaskSpec, ref: Any) -> str:
    return f"{spec.flow_name}/{spec.run_id}/{ref.step}/{ref.task_id}"


def _check_transition(ctx: TaskContext, node: Any) -> None:
    if node.type == "end":
        if ctx.transition is not None:
            raise StepFailed("the end step must not call self.next()")
        return
    if ctx.transition is None:
        raise StepFailed(f"step {node.name} finished without calling self.next()")
    steps, foreach = ctx.transition
    if node.is_switch:
        if len(steps) != 1 or steps[0] not in node.out_funcs or foreach is not None:
            raise StepFailed(f"step {node.name} went to {', '.join(steps)}, which is not a case of its switch "
                             f"({', '.join(node.out_funcs)}); self.next must be the step's last statement")
        return
    if steps != list(node.out_funcs) or foreach != node.foreach_var:
        said = ", ".join(f"self.{s}" for s in steps) + (f", foreach={foreach!r}" if foreach else "")
        expected = ", ".join(f"self.{s}" for s in node.out_funcs) + (f", foreach={node.foreach_var!r}" if node.foreach_var else "")
        raise StepFailed(f"step {node.name} called self.next({said}) but its last line says self.next({expected}); "
                         "self.next must be the step's last statement")


def _split(flow: Any, ctx: TaskContext, node: Any, store: ArtifactStore, records: TaskRecords,
           spec: TaskSpec) -> dict[str, Any]:
    """Store the foreach's items and its split file; the record keeps only the count and where
    the file is (so a child reads its own item, not every item)."""
    var = node.foreach_var
    try:
        value = getattr(flow, var)
    except AttributeError:
        raise StepFailed(f"step {node.name}: foreach={var!r} names no artifact; set self.{var} to a list first") from None
    try:
        items = value if isinstance(value, (list, tuple)) else list(value)
    except TypeError:
        raise StepFailed(f"step {node.name}: foreach artifact {var!r} is a {type(value).__name__}, not a list") from None
    if not items:
        raise StepFailed(f"step {node.name}: foreach artifact {var!r} is empty; a foreach needs at least one item")
    shas = [store.save(item, f"{var}[{i}]", node.name).sha for i, item in enumerate(items)]
    key = records.split_key(spec.run_id, spec.step, spec.task_id, spec.attempt)
    width = records.write_split(key, shas)
    return {"var": var, "num_splits": len(items), "split": key, "width": width}


def _persist(flow: Any, ctx: TaskContext, store: ArtifactStore, step: str) -> dict[str, list]:
    out = dict(ctx.refs)
    for name, value in flow.__dict__.items():
        if name.startswith("_"):
            continue
        loaded = ctx.loaded.get(name)
        if loaded is not None and loaded[1] is value and name in out:
            # Read from the parent: the parent's reference still holds unless it was mutated,
            # which only re-hashing (not re-writing) can tell for mutable values.
            if isinstance(value, IMMUTABLE) or store.digest(value, like=loaded[0]) == loaded[0]:
                continue
        out[name] = store.save(value, name, step).to_json()
    return out


def _default_catch_var(flow: Any, ctx: TaskContext) -> None:
    """Like Metaflow, a step with @catch(var=...) that succeeds sets var to None."""
    catch = step_decorators(getattr(type(flow), ctx.step_name)).get("catch")
    var = catch.attributes["var"] if catch is not None else None
    if var and var not in flow.__dict__ and var not in ctx.refs:
        flow.__dict__[var] = None


def _load_secrets(decorator: Any) -> None:
    """``@secrets``: put the step's secrets into this process's environment (nothing else sees them)."""
    if decorator is not None and decorator.attributes["sources"]:
        from mfc.runner.secrets import load_secrets

        os.environ.update(load_secrets(decorator.attributes["sources"], decorator.attributes["role"]))


def _bind_current(spec: TaskSpec, flow_cls: type) -> None:
    current._bind(
        flow_name=spec.flow_name, run_id=spec.run_id, step_name=spec.step, task_id=spec.task_id,
        retry_count=spec.attempt, username=spec.username, tags=spec.tags, origin_run_id=spec.origin_run_id,
        datastore_root=spec.datastore_root,
        **(project_info(flow_cls, spec.username) or {}),
    )


LATE_EXIT_CODE = 3  # the task's run has ended: nothing was (or will be) recorded


def run_ended(blobs: BlobStore, spec: TaskSpec) -> str | None:
    """Why the task's run has ended (its final status, or crashed and why), None while it runs
    or when nothing says it ended (no record of the run, or a store that cannot be read: the
    task then goes on, and its own reads and writes report the store's trouble)."""
    metadata = BlobMetadata(blobs)
    try:
        facts = metadata.facts(spec.flow_name, spec.run_id)
        if facts["run"] is None:
            return None
        state = metadata.state(spec.flow_name, spec.run_id, facts["run"], facts["status"], facts["lease"])
    except Exception:  # noqa: BLE001 - a store that cannot answer is no evidence the run ended
        return None
    if not state.ended:
        return None
    return state.status + (f" ({state.reason})" if state.reason else "")


def _refuse_late(spec: TaskSpec, why: str) -> int:
    print(f"error: run {spec.flow_name}/{spec.run_id} has ended: {why}; task {spec.pathspec} attempt "
          f"{spec.attempt} is not recorded", file=sys.stderr, flush=True)
    return LATE_EXIT_CODE


def execute(spec: TaskSpec, flow_cls: type, graph: FlowGraph) -> int:
    """Run the step, persist its artifacts and write the attempt record. Returns the exit code.

    A task whose run has ended (a final status, or crashed: its driver is gone) writes nothing
    into it, neither before it runs nor after: it says why on stderr and exits 3."""
    blobs = counted(open_blob_store(spec.datastore_root))
    try:
        return _execute(spec, flow_cls, graph, blobs)
    finally:
        report_reads(blobs, spec.pathspec)


def _execute(spec: TaskSpec, flow_cls: type, graph: FlowGraph, blobs: BlobStore) -> int:
    started = time.time()
    why = run_ended(blobs, spec)
    if why is not None:
        return _refuse_late(spec, why)
    store = ArtifactStore(blobs, spec.flow_name)
    records = task_records(blobs, spec.flow_name)
    node = graph[spec.step]
    record: dict[str, Any] = {  # what the attempt's TaskRecord will hold
        "ending": Ending.FAILED, "foreach_stack": [], "foreach": None, "artifacts": {}, "exception": None,
    }
    params = set(flow_parameters(flow_cls))
    inherited: dict[str, list] = {}
    flow: Any = None
    ctx: TaskContext | None = None
    code = 0
    cards = card_decorators(getattr(flow_cls, spec.step))
    collector: Any = None
    try:
        os.environ.update(spec.environment)
        _load_secrets(step_decorators(getattr(flow_cls, spec.step)).get("secrets"))
        _bind_current(spec, flow_cls)
        if cards:  # only then is mfc.cards imported: a step without @card pays nothing for cards
            from mfc.cards.render import start_cards

            collector = start_cards(cards)
        index, stack, inputs = _prepare(spec, graph, records, store, params)
        inherited = dict(index)
        record["foreach_stack"] = stack
        frame = stack[-1] if stack else None
        records.register_start(spec.run_id, spec.step, spec.task_id, spec.attempt, round(started, 3),
                               frame["index"] if frame else None, (lambda: store.load(frame["input"])) if frame else None)
        if spec.catch_fallback is not None:
            killed = TimeoutException if spec.fallback_ending == Ending.TIMED_OUT.value else TaskKilled
            raise killed(spec.catch_fallback)
        flow = flow_cls(use_cli=False)
        source = _input_pathspec(spec, spec.inputs[0]) if spec.inputs else None
        ctx = TaskContext(store, spec.step, index, stack, params, inputs is not None, source)
        object.__setattr__(flow, "_ctx", ctx)
        func = getattr(flow, spec.step)
        if inputs is not None:
            func(inputs)
        else:
            func()
        _check_transition(ctx, node)
        if node.is_switch and ctx.transition is not None:
            record["next"] = ctx.transition[0][0]
        _default_catch_var(flow, ctx)
        if node.foreach_var is not None:
            record["foreach"] = _split(flow, ctx, node, store, records, spec)
        record["artifacts"] = _persist(flow, ctx, store, spec.step)
        record["ending"] = Ending.OK
    except BaseException as exc:  # noqa: BLE001 - a task reports every failure, sys.exit included
        info = describe_exception(exc, spec.flow_file)
        catch = step_decorators(getattr(flow_cls, spec.step)).get("catch")
        if catch is not None and spec.is_last_attempt and node.foreach_var is None:
            code = _caught(catch, info, _partial(flow, ctx, store, spec.step, inherited), store, record, spec)
        elif isinstance(exc, (ServiceError, SecretsError, SwitchError)):  # one line, no traceback
            print(f"error: {exc}", file=sys.stderr)
            record.update(ending=Ending.FAILED, exception=info)
            code = 1
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            record.update(ending=Ending.FAILED, exception=info)
            code = 1
    if collector is not None and record["ending"].succeeded:
        record["cards"] = _render_cards(collector, spec, flow, record["artifacts"], store, records)
    result = TaskRecord(spec.pathspec, spec.attempt, started_at=round(started, 3), finished_at=round(time.time(), 3),
                        origin_run_id=spec.origin_run_id, extra=queue_times(spec.submitted_at, started), **record)
    sys.stdout.flush()
    sys.stderr.flush()
    why = run_ended(blobs, spec)
    if why is not None:
        return _refuse_late(spec, why)
    final = result.ending.succeeded or spec.is_last_attempt
    if not records.finish(spec.run_id, spec.step, spec.task_id, spec.attempt, result, final):
        print(f"error: task {spec.pathspec} attempt {spec.attempt} already has a record (its end was recorded "
              "first by the run); this attempt's own result is not recorded", file=sys.stderr, flush=True)
        return LATE_EXIT_CODE
    return code


def _render_cards(collector: Any, spec: TaskSpec, flow: Any, artifacts: dict[str, list], store: ArtifactStore,
                  records: TaskRecords) -> list[dict]:
    """The step's cards, stored; none (with a warning) when even storing them fails, since a
    card never fails its task."""
    from mfc.cards.collector import warn
    from mfc.cards.render import card_task, finish_cards

    try:
        task = card_task(spec.pathspec, spec.attempt, flow, artifacts, store)
        return finish_cards(collector, task, records, spec.run_id, spec.step, spec.task_id, spec.attempt)
    except Exception as exc:  # noqa: BLE001 - a card is a report on the task, not part of its result
        warn(f"the cards of {spec.pathspec} were not stored: {type(exc).__name__}: {exc}")
        return []


def _partial(flow: Any, ctx: TaskContext | None, store: ArtifactStore, step: str, inherited: dict[str, list]) -> dict[str, list]:
    """What a caught step leaves behind: its inputs plus whatever it set before failing (as
    Metaflow keeps them); just its inputs when even that cannot be stored."""
    if flow is None or ctx is None:
        return inherited
    try:
        return _persist(flow, ctx, store, step)
    except Exception:  # noqa: BLE001 - an unpicklable partial result must not hide the real error
        return inherited


def _caught(catch: Any, info: dict[str, Any], inherited: dict[str, list], store: ArtifactStore,
            record: dict[str, Any], spec: TaskSpec) -> int:
    if catch.attributes["print_exception"]:
        print(f"@catch caught {info['type']}: {info['message']}", file=sys.stderr)
        if spec.catch_fallback is None:
            print(info["traceback"], file=sys.stderr)
    artifacts = dict(inherited)
    var = catch.attributes["var"]
    if var:
        wrapped = CaughtException(info["qualified_type"], info["message"], info["traceback"], info["where"])
        artifacts[var] = store.save(wrapped, var, spec.step).to_json()
    record.update(ending=Ending.CAUGHT, artifacts=artifacts, caught=info)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m mfc.runner.task --spec JSON`` (or ``--spec @file.json``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="mfc task", description="Run one task of a flow from a TaskSpec.")
    parser.add_argument("--spec", required=True, help="TaskSpec JSON, or @path to a file holding it")
    args = parser.parse_args(argv)
    from mfc.runner.lifeline import die_with_parent_from_env

    die_with_parent_from_env()  # started by the spawn executor: never outlive it
    text = args.spec
    if text.startswith("@"):
        text = read_spec(text[1:])
    spec = TaskSpec.from_json(text)
    from mfc.runner.bootstrap import prepare_code

    flow_file = prepare_code(spec)
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph

    module = import_flow_file(flow_file)
    flow_cls = flow_class(module, spec.flow_name, flow_file)
    graph = load_graph(flow_file, spec.flow_name)
    spec.flow_file = flow_file
    return execute(spec, flow_cls, graph)


if __name__ == "__main__":
    sys.exit(main())
