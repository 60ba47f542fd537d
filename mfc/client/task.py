"""``Task('Flow/run_id/step/task_id')``: one task's artifacts, logs, status and exception.

A task's state is its latest attempt: while that attempt's record is not written the task is
running (``finished`` is False, it has no artifacts yet).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mfc.client.base import ClientObject, split_pathspec, to_datetime
from mfc.client.data import ArtifactList, DataArtifact, TaskData
from mfc.client.datastore import Datastore
from mfc.client.errors import MfcNotFound, MissingArtifact

if TYPE_CHECKING:
    from mfc.client.step import Step


@dataclass(frozen=True)
class TaskException:
    """Why a task failed: ``type``, ``message``, the flow-file line (``where``, ``source``) and the
    traceback. ``str()`` gives one line; ``exc["type"]`` reads it like the stored dict."""

    type: str
    message: str
    traceback: str = ""
    where: str = ""
    source: str = ""
    died: bool = False

    def __str__(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"{self.type}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"<TaskException {self}>"

    @property
    def exception(self) -> str:
        """Metaflow's name for the message."""
        return self.message

    @property
    def stacktrace(self) -> str:
        """Metaflow's name for the traceback."""
        return self.traceback

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback, "where": self.where,
                "source": self.source, "died": self.died}


class Task(ClientObject):
    """One task of a step; ``task.data.x`` loads the artifact ``x`` (only that one)."""

    _kind = "Task"

    def __init__(self, pathspec: str, _namespace_check: bool = True, *, _datastore: Datastore | None = None,
                 _step: Step | None = None) -> None:
        flow, run_id, step, task_id = split_pathspec(pathspec, "Task")
        super().__init__(f"{flow}/{run_id}/{step}/{task_id}", _datastore)
        if _step is None:
            from mfc.client.step import Step

            _step = Step(f"{flow}/{run_id}/{step}", _namespace_check, _datastore=self._ds)
        self._step = _step
        self._flow_name, self._run_id, self._step_name = flow, run_id, step
        self._records = self._ds.records(flow)
        self._final: tuple[int, dict[str, Any]] | None = None
        self._data: TaskData | None = None
        if not self._attempts():
            ids = ", ".join(_step._task_ids())
            raise MfcNotFound(f"no task {self._pathspec} (tasks of step {step}: {ids})")

    # -- state -------------------------------------------------------------------------------------
    def _attempts(self) -> list[int]:
        return self._records.attempts(self._run_id, self._step_name, self.id)

    def _state(self) -> tuple[int, dict[str, Any] | None]:
        """(latest attempt, its record or None while it runs). A success is final and cached; a
        failure is not, since a retry may follow."""
        if self._final is not None:
            return self._final
        attempts = self._attempts()
        attempt = attempts[-1] if attempts else 0
        record = self._records.read(self._run_id, self._step_name, self.id, attempt)
        if record is not None and record.get("status") == "ok":
            self._final = (attempt, record)
        return attempt, record

    @property
    def _record(self) -> dict[str, Any] | None:
        return self._state()[1]

    @property
    def parent(self) -> Step:
        return self._step

    @property
    def current_attempt(self) -> int:
        """The latest attempt number (0 unless the task was retried)."""
        return self._state()[0]

    @property
    def finished(self) -> bool:
        """True once the latest attempt has written its record."""
        return self._record is not None

    @property
    def successful(self) -> bool:
        """True if the latest attempt finished and succeeded (an exception caught by @catch counts)."""
        record = self._record
        return record is not None and record.get("status") == "ok"

    @property
    def created_at(self) -> datetime | None:
        record = self._record
        return to_datetime(record.get("started_at")) if record else None

    @property
    def finished_at(self) -> datetime | None:
        record = self._record
        return to_datetime(record.get("finished_at")) if record else None

    @property
    def index(self) -> int | None:
        """The task's index in the innermost enclosing foreach, or None outside a foreach."""
        record = self._record
        stack = (record or {}).get("foreach_stack") or []
        return stack[-1]["index"] if stack else None

    @property
    def exception(self) -> TaskException | None:
        """Why the task failed; None if it succeeded or is still running."""
        record = self._record or {}
        info = record.get("exception")
        if not info or record.get("status") == "ok":
            return None
        return TaskException(info.get("type", "Error"), info.get("message", ""), info.get("traceback", ""),
                             info.get("where", ""), info.get("source", ""), bool(record.get("died")))

    @property
    def caught_exception(self) -> TaskException | None:
        """The exception @catch caught in this task, if any (the task itself succeeded)."""
        info = (self._record or {}).get("caught")
        if not info:
            return None
        return TaskException(info.get("type", "Error"), info.get("message", ""), info.get("traceback", ""),
                             info.get("where", ""), info.get("source", ""))

    @property
    def origin_pathspec(self) -> str | None:
        """The task a resumed run cloned this one from, when the record says so."""
        return (self._record or {}).get("origin_pathspec")

    @property
    def metadata_dict(self) -> dict[str, Any]:
        """The latest attempt's metadata: attempt, status, timestamps, foreach position, origin run."""
        attempt, record = self._state()
        record = record or {}
        return {
            "attempt": attempt,
            "status": record.get("status", "running"),
            "started_at": record.get("started_at"),
            "finished_at": record.get("finished_at"),
            "foreach_stack": [{k: v for k, v in frame.items() if k != "input"}
                              for frame in record.get("foreach_stack") or []],
            "origin_run_id": record.get("origin_run_id"),
            "caught": bool(record.get("caught")),
            "died": bool(record.get("died")),
        }

    # -- logs --------------------------------------------------------------------------------------
    def _log(self, stream: str) -> str:
        data = self._records.read_log(self._run_id, self._step_name, self.id, self.current_attempt, stream)
        return data.decode("utf-8", "replace")

    @property
    def stdout(self) -> str:
        """The latest attempt's standard output (so far, while it runs)."""
        return self._log("stdout")

    @property
    def stderr(self) -> str:
        """The latest attempt's standard error (so far, while it runs)."""
        return self._log("stderr")

    # -- artifacts ---------------------------------------------------------------------------------
    def _index(self) -> dict[str, list]:
        return dict((self._record or {}).get("artifacts") or {})

    @property
    def data(self) -> TaskData:
        """Artifacts as attributes: ``task.data.x`` loads ``x`` on access (and only ``x``)."""
        if self._data is None or not self._data._index:
            self._data = TaskData(self)
        return self._data

    @property
    def artifacts(self) -> ArtifactList:
        """The artifacts' names, sizes and types, without loading their values."""
        return ArtifactList(self)

    def _missing(self, name: str) -> MissingArtifact:
        record = self._record
        if record is None:
            return MissingArtifact(f"task {self._pathspec} has not finished yet: no artifact {name!r} so far")
        if record.get("status") != "ok":
            return MissingArtifact(f"task {self._pathspec} failed ({self.exception}); it has no artifact {name!r}")
        names = sorted(n for n in self._index() if not n.startswith("_"))
        return MissingArtifact(f"task {self._pathspec} has no artifact {name!r} (artifacts: {', '.join(names) or 'none'})")

    def __getitem__(self, name: str) -> DataArtifact:
        ref = self._index().get(name)
        if ref is None:
            raise self._missing(name)
        return DataArtifact(self, name, ref)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._index()

    def __iter__(self) -> Iterator[DataArtifact]:
        return iter(self.artifacts)

    @property
    def cards(self) -> Any:
        """The latest attempt's ``@card`` cards (a list of :class:`mfc.cards.Card`; empty when the
        step has none or the attempt failed)."""
        from mfc.cards.client import task_cards

        return task_cards(self)

    def _repr_html_(self) -> str:
        from mfc.client.render import task_html

        return task_html(self)
