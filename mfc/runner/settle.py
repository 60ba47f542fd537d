"""Finished tasks' records, read and written off the orchestrator's scheduling thread.

When a task exits, its record has to be read (a GET on S3) and, for a task that wrote none, the
run's "died" record built (reading its parents for its foreach stack) and written create-only.
A :class:`Settler` does that on a small pool of threads and posts a :class:`Settled` event to
the orchestrator's queue; the scheduling thread only decides what follows. Final-attempt
pointers of failed tasks are written on the same pool; :meth:`Settler.close` waits for every
write, so they all land before the run's status does.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mfc.exceptions import MfcError
from mfc.runner.dag import child_stack
from mfc.runner.taskspec import TaskSpec
from mfc.stores.records import TaskRecords
from mfc.stores.taskrecord import Ending, TaskRecord

WORKERS = 8


@dataclass
class Death:
    """Why an attempt that may have written no record ended, as the scheduling thread saw it
    when the task exited (the record is built from it only if the task wrote none)."""

    reason: str
    ending: Ending
    finished_at: float
    times: dict[str, Any]  # queue times (see mfc.runner.executor.queue_times)


@dataclass
class Settled:
    """A finished task's record is ready: the task's own, or the run's for a task that wrote
    none. ``note``: something to tell the user; ``error``: what reading or writing raised (the
    scheduling thread raises it, as if it had made the call itself)."""

    key: str
    record: TaskRecord | None = None
    note: str | None = None
    error: BaseException | None = None


def exit_reason(code: int) -> str:
    """Why a task process that wrote no record ended, from its exit code (-N: signal N)."""
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return f"killed by signal {name}" + (" (segmentation fault)" if name == "SIGSEGV" else "")
    if code == 0:
        return "exited before recording a result (did the step call os._exit()?)"
    return f"exited with code {code} before recording a result"


def stack_of(graph: Any, records: TaskRecords, spec: TaskSpec) -> list[dict]:
    """The foreach stack a task of ``spec`` has, from its parents' records (batched reads); []
    when they cannot tell."""
    try:
        found = records.final_many(spec.run_id, [(r.step, r.task_id, r.attempt) for r in spec.inputs])
        parents = [(ref, record or {}) for ref, record in zip(spec.inputs, found, strict=True)]
        return child_stack(graph, spec.step, parents, spec.split_index,
                           records.foreach_item)
    except (KeyError, IndexError, MfcError):
        return []


def settle_record(graph: Any, records: TaskRecords, spec: TaskSpec, death: Death) -> tuple[TaskRecord, str | None]:
    """The record an ended attempt leaves: its own if it wrote one; else the run's, written
    create-only, and when the task's own record came in first after all, that one stands and
    the returned note says so."""
    own = records.read_task(spec.run_id, spec.step, spec.task_id, spec.attempt)
    if own is not None:
        return own, None
    times = dict(death.times)
    record = TaskRecord(
        spec.pathspec, spec.attempt, death.ending, foreach_stack=stack_of(graph, records, spec),
        finished_at=death.finished_at,
        exception={"type": "TaskDied", "message": death.reason, "where": "", "source": "", "traceback": ""},
        started_at=times.pop("started_at", None), extra=times,
    )
    if records.write(spec.run_id, spec.step, spec.task_id, spec.attempt, record):
        return record, None
    theirs = records.read_task(spec.run_id, spec.step, spec.task_id, spec.attempt)
    if theirs is None:  # written and gone again: nothing else to go by
        return record, None
    return theirs, (f"task {spec.pathspec} attempt {spec.attempt}: its own record came in before the run's "
                    f"({death.reason}); the task's record stands")


class Settler:
    """Settles finished tasks on a pool of threads, posting :class:`Settled` to ``events``."""

    def __init__(self, graph: Any, records: TaskRecords, events: queue.Queue[Any], workers: int = WORKERS) -> None:
        self.graph = graph
        self.records = records
        self.events = events
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mfc-settle")
        self._writes: list[Future[Any]] = []
        self._lock = threading.Lock()

    def settle(self, key: str, spec: TaskSpec, death: Death) -> None:
        """Read (or write) the record of the attempt behind ``key``; a Settled event follows."""
        self._pool.submit(self._settle, key, spec, death)

    def _settle(self, key: str, spec: TaskSpec, death: Death) -> None:
        try:
            record, note = settle_record(self.graph, self.records, spec, death)
            self.events.put(Settled(key, record, note))
        except BaseException as exc:  # noqa: BLE001 - handed to the scheduling thread
            self.events.put(Settled(key, error=exc))

    def write_final(self, spec: TaskSpec) -> None:
        """Name the spec's attempt as its task's final one, in the background."""
        self._submit_write(self.records.write_final, spec.run_id, spec.step, spec.task_id, spec.attempt)

    def _submit_write(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._writes = [f for f in self._writes if not f.done() or f.exception() is not None]
            self._writes.append(self._pool.submit(fn, *args))

    def close(self) -> None:
        """Wait for every settle and write; raise the first write's failure."""
        self._pool.shutdown(wait=True)
        for future in self._writes:
            error = future.exception()
            if error is not None:
                raise error
