"""Artifacts as the client shows them: ``DataArtifact`` (one value, loaded on ``.data``),
``TaskData`` (``task.data.x``) and ``ArtifactList`` (names, sizes and types without values).

Names starting with ``_`` are internal: reachable by name, left out of listings.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mfc.exceptions import CorruptArtifact

if TYPE_CHECKING:
    from mfc.client.datastore import Datastore
    from mfc.client.task import Task

_UNLOADED = object()


class DataArtifact:
    """One artifact of a task. ``.data`` loads (and caches) the value; ``.sha``, ``.size`` and
    ``.type`` come from the task's record without loading anything.

    ``DataArtifact('Flow/run_id/step/task_id/name')`` finds it as Metaflow's does (MfcNotFound,
    MissingArtifact when it is not there); a Task builds its own with ``(task, name, ref)``."""

    def __init__(self, pathspec: str | Task, name: str | None = None, ref: list | None = None,
                 _namespace_check: bool = True, *, _datastore: Datastore | None = None) -> None:
        if isinstance(pathspec, str) or name is None or ref is None:
            task, name, ref = _find(pathspec, _namespace_check, _datastore)
        else:
            task = pathspec
        self._task = task
        self._name = name
        self.sha: str = ref[0]
        self.size: int = ref[1]
        self.type: str = ref[2]
        self._value: Any = _UNLOADED

    @property
    def id(self) -> str:
        return self._name

    @property
    def name(self) -> str:
        return self._name

    @property
    def pathspec(self) -> str:
        return f"{self._task.pathspec}/{self._name}"

    @property
    def parent(self) -> Task:
        return self._task

    @property
    def task(self) -> Task:
        return self._task

    @property
    def data(self) -> Any:
        """The artifact's value (unpickled on first access)."""
        if self._value is _UNLOADED:
            try:
                self._value = self._task._ds.artifacts(self._task._flow_name).load(self.sha)
            except CorruptArtifact as exc:
                raise exc.within(self._task.pathspec, self._name) from None
        return self._value

    @property
    def created_at(self) -> datetime | None:
        """When the task that produced this artifact finished."""
        return self._task.finished_at

    finished_at = created_at

    def __repr__(self) -> str:
        return f"DataArtifact({self.pathspec!r})"

    def _repr_html_(self) -> str:
        from mfc.client.render import artifact_html

        return artifact_html(self)


def _find(pathspec: Any, namespace_check: bool, datastore: Datastore | None) -> tuple[Task, str, list]:
    from mfc.client.task import Task
    from mfc.pathspec import split_pathspec

    flow, run_id, step, task_id, name = split_pathspec(pathspec, "DataArtifact")
    task = Task(f"{flow}/{run_id}/{step}/{task_id}", namespace_check, _datastore=datastore)
    ref = task._index().get(name)
    if ref is None:
        raise task._missing(name)
    return task, name, ref


class TaskData:
    """``task.data``: artifacts as attributes, each loaded on first access."""

    def __init__(self, task: Task) -> None:
        object.__setattr__(self, "_task", task)
        object.__setattr__(self, "_index", task._index())
        object.__setattr__(self, "_values", {})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_task", "_index", "_values"):
            raise AttributeError(name)
        values = self._values
        if name not in values:
            values[name] = self._task[name].data
        return values[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"artifacts of {self._task.pathspec} are read-only")

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __dir__(self) -> list[str]:
        return sorted(n for n in self._index if not n.startswith("_"))

    def __repr__(self) -> str:
        return f"<TaskData {self._task.pathspec}: {', '.join(self.__dir__())}>"


class ArtifactList:
    """``task.artifacts``: iterate DataArtifacts (by name), ``task.artifacts.x``, ``len``, ``in``."""

    def __init__(self, task: Task) -> None:
        self._task = task
        index = task._index()
        self._items = [DataArtifact(task, name, index[name]) for name in sorted(index) if not name.startswith("_")]

    def __iter__(self) -> Iterator[DataArtifact]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return any(a.name == name for a in self._items)

    def __getattr__(self, name: str) -> DataArtifact:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._task[name]

    def __getitem__(self, key: int | str) -> DataArtifact:
        return self._items[key] if isinstance(key, int) else self._task[key]

    def names(self) -> list[str]:
        return [a.name for a in self._items]

    def __repr__(self) -> str:
        listing = ", ".join(f"{a.name} ({a.type}, {a.size} B)" for a in self._items)
        return f"<artifacts of {self._task.pathspec}: {listing or 'none'}>"

    def _repr_html_(self) -> str:
        from mfc.client.render import task_html

        return task_html(self._task)
