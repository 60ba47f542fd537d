"""``Run('Flow/run_id')``: status, timing, tags, parameters, code and its steps."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mfc.client.base import ClientObject, split_pathspec, to_datetime
from mfc.client.datastore import Datastore
from mfc.client.errors import MfcNamespaceMismatch, MfcNotFound, lookup
from mfc.client.namespace import get_namespace, in_namespace
from mfc.exceptions import CorruptArtifact, MfcError
from mfc.pathspec import is_valid
from mfc.tags import check_tag as _check_tag
from mfc.tags import check_tag_count

if TYPE_CHECKING:
    from mfc.client.code import RunCode
    from mfc.client.data import TaskData
    from mfc.client.flow import Flow
    from mfc.client.step import Step
    from mfc.client.task import Task

PARAMETERS_STEP, PARAMETERS_TASK = "_parameters", "0"


def step_order(graph: dict[str, list]) -> list[str]:
    """The steps of a run record's graph summary (name -> [type, out_funcs, ...]) in the order
    they launch: a step once all its predecessors are done, the targets of one transition in
    the order ``self.next(...)`` names them."""
    waiting = {name: 0 for name in graph}
    for name, shape in graph.items():
        for target in shape[1]:
            if target in waiting and target != name:  # a looping switch's case back to its own step
                waiting[target] += 1
    order: list[str] = []
    todo = deque(["start"] if "start" in graph else [])
    while todo:
        name = todo.popleft()
        order.append(name)
        for target in graph[name][1]:
            if target in waiting and target not in ("start", name):
                waiting[target] -= 1
                if waiting[target] == 0:
                    todo.append(target)
    return order


def run_tags(record: dict[str, Any]) -> set[str]:
    """User and system tags of a run record."""
    return set(record.get("tags") or ()) | set(record.get("system_tags") or ())


def fetch_run(ds: Datastore, flow: str, run_id: str) -> dict[str, Any]:
    """The run's merged record, or MfcNotFound naming what is missing."""
    record = ds.metadata.run(flow, run_id)
    if record is not None:
        return record
    if not ds.metadata.run_ids(flow):
        raise MfcNotFound(f"no run {flow}/{run_id} in {ds.root}: the datastore has no flow {flow!r}")
    raise MfcNotFound(f"no run {flow}/{run_id} in {ds.root}")


def check_namespace(pathspec: str, record: dict[str, Any]) -> None:
    """Raise MfcNamespaceMismatch if the run of ``record`` is outside the current namespace."""
    ns = get_namespace()
    if in_namespace(run_tags(record), ns):
        return
    owner = next((t for t in record.get("system_tags") or () if t.startswith("user:")), None)
    hint = "namespace(None) shows every run" + (f"; namespace({owner!r}) shows this one" if owner else "")
    raise MfcNamespaceMismatch(f"{pathspec} is not in namespace {ns!r}", hint=hint)


class Run(ClientObject):
    """One run of a flow. Iterating yields its steps in execution order."""

    _kind = "Run"

    def __init__(self, pathspec: str, _namespace_check: bool = True, *, _datastore: Datastore | None = None,
                 _record: dict[str, Any] | None = None) -> None:
        flow, run_id = split_pathspec(pathspec, "Run")
        super().__init__(f"{flow}/{run_id}", _datastore)
        self._flow_name = flow
        self._record = _record if _record is not None else fetch_run(self._ds, flow, run_id)
        if _namespace_check:
            check_namespace(self._pathspec, self._record)

    # -- status and timing -------------------------------------------------------------------------
    def _current(self) -> dict[str, Any]:
        """The record, re-read while the run is still going (its status changes when it ends)."""
        if self._record.get("status") == "running":
            self._record = self._ds.metadata.run(self._flow_name, self.id) or self._record
        return self._record

    @property
    def status(self) -> str:
        """``running``, ``succeeded``, ``failed``, ``interrupted`` or ``crashed`` (no final status, and
        the process that drove the run is gone or its lease expired: ``error`` says which)."""
        return self._current()["status"]

    @property
    def finished(self) -> bool:
        """True once the run has ended, successfully or not (a crashed run has ended)."""
        return self.status != "running"

    @property
    def successful(self) -> bool:
        """True if the run ended and succeeded."""
        return self.status == "succeeded"

    @property
    def error(self) -> str | None:
        """Why the run failed or crashed (one line), if it did."""
        return self._current().get("result", {}).get("error")

    @property
    def created_at(self) -> datetime:
        return to_datetime(self._record["created_at"])

    @property
    def finished_at(self) -> datetime | None:
        return to_datetime(self._current().get("finished_at"))

    # -- who and what ------------------------------------------------------------------------------
    @property
    def user(self) -> str | None:
        return self._record.get("user")

    @property
    def origin_run_id(self) -> str | None:
        """The run this one resumed, if any."""
        return self._record.get("origin_run_id")

    @property
    def flow_file(self) -> str | None:
        return self._record.get("flow_file")

    @property
    def parent(self) -> Flow:
        from mfc.client.flow import Flow

        return Flow(self._flow_name, _datastore=self._ds)

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameter values (loaded from the datastore, so exactly what the steps saw)."""
        records = self._ds.records(self._flow_name)
        record = records.read(self.id, PARAMETERS_STEP, PARAMETERS_TASK, 0)
        if record is None:
            return dict(self._record.get("parameters") or {})
        store = self._ds.artifacts(self._flow_name)
        values = {}
        for name, ref in sorted(record["artifacts"].items()):
            try:
                values[name] = store.load(ref[0])
            except CorruptArtifact as exc:
                raise exc.within(f"{self._pathspec}/{PARAMETERS_STEP}/{PARAMETERS_TASK}", name) from None
        return values

    @property
    def code(self) -> RunCode | None:
        """The run's code package (``.tarball`` bytes, ``.extract(dir)``), or None if it has none."""
        info = self._record.get("code_package")
        if not info:
            return None
        from mfc.client.code import RunCode

        return RunCode(self._ds.artifacts(self._flow_name), info)

    # -- tags --------------------------------------------------------------------------------------
    @property
    def user_tags(self) -> frozenset[str]:
        return frozenset(self._record.get("tags") or ())

    @property
    def system_tags(self) -> frozenset[str]:
        return frozenset(self._record.get("system_tags") or ())

    @property
    def tags(self) -> frozenset[str]:
        """User tags and system tags (``user:<name>``, ``mfc_version:...``) together."""
        return self.user_tags | self.system_tags

    def _edit_tags(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        add = [_check_tag(t) for t in add]
        remove = [_check_tag(t) for t in remove]
        fresh = fetch_run(self._ds, self._flow_name, self.id)  # another process may have edited them
        system = set(fresh.get("system_tags") or ())
        protected = sorted(system.intersection(remove))
        if protected:
            raise MfcError(f"{protected[0]!r} is a system tag of run {self._pathspec}; system tags cannot be removed")
        fresh["tags"] = self._ds.metadata.update_tags(self._flow_name, self.id, add, remove, check=check_tag_count)
        self._record = fresh

    def add_tag(self, tag: str) -> None:
        """Add a user tag to the run."""
        self._edit_tags(add=[tag])

    def add_tags(self, tags: Iterable[str]) -> None:
        """Add several user tags at once."""
        self._edit_tags(add=list(tags))

    def remove_tag(self, tag: str) -> None:
        """Remove a user tag (no error if the run does not carry it; system tags cannot be removed)."""
        self._edit_tags(remove=[tag])

    def remove_tags(self, tags: Iterable[str]) -> None:
        """Remove several user tags at once."""
        self._edit_tags(remove=list(tags))

    def replace_tag(self, tag_to_remove: str, tag_to_add: str) -> None:
        """Remove one user tag and add another in a single update."""
        self._edit_tags(add=[tag_to_add], remove=[tag_to_remove])

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """Remove and add user tags in a single update."""
        self._edit_tags(add=list(tags_to_add), remove=list(tags_to_remove))

    # -- steps -------------------------------------------------------------------------------------
    def _step_order(self) -> list[str]:
        """The steps that have tasks, in execution order: the graph's topological order (runs
        made before derived task ids: the launch order their numbered task ids give)."""
        records = self._ds.records(self._flow_name)
        tasks = {name: ids for name in records.steps(self.id) if (ids := records.tasks(self.id, name))}
        if tasks and all(any(t.isdigit() for t in ids) for ids in tasks.values()):
            return sorted(tasks, key=lambda name: min(int(t) for t in tasks[name] if t.isdigit()))
        rank = {name: i for i, name in enumerate(step_order(self._record.get("graph") or {}))}
        return sorted(tasks, key=lambda name: (rank.get(name, len(rank)), name))

    def steps(self) -> list[Step]:
        """The steps that have started, in execution order (internal steps left out)."""
        from mfc.client.step import Step

        return [Step(f"{self._pathspec}/{name}", _datastore=self._ds, _run=self) for name in self._step_order()]

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps())

    def __getitem__(self, step: str) -> Step:
        from mfc.client.step import Step

        with lookup():
            return Step(f"{self._pathspec}/{step}", _datastore=self._ds, _run=self)

    def __contains__(self, step: object) -> bool:
        if not is_valid(step, "step") or step.startswith("_"):
            return False
        return bool(self._ds.records(self._flow_name).tasks(self.id, step))

    @property
    def end_task(self) -> Task | None:
        """The task of the end step, once it has started."""
        return self["end"].task if "end" in self else None

    @property
    def data(self) -> TaskData | None:
        """The end step's artifacts (``run.data.x``); None until the end step has succeeded."""
        task = self.end_task
        return task.data if task is not None and task.successful else None

    def _repr_html_(self) -> str:
        from mfc.client.render import run_html

        return run_html(self)
