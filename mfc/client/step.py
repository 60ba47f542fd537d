"""``Step('Flow/run_id/step')``: the tasks of one step (one, or one per foreach item)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from mfc.client.base import ClientObject, split_pathspec
from mfc.client.datastore import Datastore
from mfc.client.errors import MfcNotFound, lookup
from mfc.client.run import Run
from mfc.client.task import Task


class Step(ClientObject):
    """A step of a run. Iterating yields its tasks in foreach-index order (a foreach: one per
    item; in runs made before derived task ids, by task number)."""

    _kind = "Step"

    def __init__(self, pathspec: str, _namespace_check: bool = True, *, _datastore: Datastore | None = None,
                 _run: Run | None = None) -> None:
        flow, run_id, name = split_pathspec(pathspec, "Step")
        super().__init__(f"{flow}/{run_id}/{name}", _datastore)
        self._run = _run if _run is not None else Run(f"{flow}/{run_id}", _namespace_check, _datastore=self._ds)
        self._flow_name, self._run_id = flow, run_id
        if name.startswith("_") or not self._task_ids():
            steps = self._run._step_order()
            raise MfcNotFound(f"no step {name!r} in run {self._run.pathspec} (steps: {', '.join(steps) or 'none yet'})")

    def _task_ids(self) -> list[str]:
        return self._ds.records(self._flow_name).tasks(self._run_id, self.id)

    @property
    def parent(self) -> Run:
        return self._run

    def tasks(self) -> list[Task]:
        """The step's tasks that have started, in foreach-index order."""
        return [Task(f"{self._pathspec}/{t}", _datastore=self._ds, _step=self) for t in self._task_ids()]

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks())

    def __getitem__(self, task_id: str) -> Task:
        with lookup():
            return Task(f"{self._pathspec}/{task_id}", _datastore=self._ds, _step=self)

    def __contains__(self, task_id: object) -> bool:
        return isinstance(task_id, str) and task_id in self._task_ids()

    def __len__(self) -> int:
        return len(self._task_ids())

    @property
    def task(self) -> Task:
        """The step's first task (for a foreach, the first item's)."""
        return Task(f"{self._pathspec}/{self._task_ids()[0]}", _datastore=self._ds, _step=self)

    @property
    def created_at(self) -> datetime | None:
        """When the step's first task started."""
        times = [t.created_at for t in self.tasks()]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    @property
    def finished_at(self) -> datetime | None:
        """When the step's last task finished; None while any task is still running."""
        times = [t.finished_at for t in self.tasks()]
        known = [t for t in times if t is not None]
        return max(known) if known and len(known) == len(times) else None

    @property
    def finished(self) -> bool:
        return all(t.finished for t in self.tasks())

    @property
    def successful(self) -> bool:
        return all(t.successful for t in self.tasks())

    def _repr_html_(self) -> str:
        from mfc.client.render import step_html

        return step_html(self)
