"""The executor interface: ``submit(spec) -> Handle``; a task's start and its exit arrive as
events on the orchestrator's queue; ``kill(handle)`` stops a task; logs are files the
orchestrator tails.

A task is *started* when it leaves its queue: a local process is running, a container is
running, a Batch job has reached RUNNING. ``@timeout`` counts from that moment; what came before
(RUNNABLE, image pulls, container creation) is queue time, recorded apart."""

from __future__ import annotations

import abc
import queue
from dataclasses import dataclass, field
from typing import Any

from mfc.runner.taskspec import TaskSpec


@dataclass
class Handle:
    """A submitted task."""

    key: str
    spec: TaskSpec
    stdout: str
    stderr: str
    pid: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class TaskStarted:
    """A task left its queue and runs: ``at`` is when (seconds since the epoch)."""

    key: str
    at: float


@dataclass
class TaskExit:
    """A task's end as its executor saw it: exit code (negative: killed by that signal)."""

    key: str
    code: int
    error: str | None = None
    executor_failure: str | None = None  # the executor itself died: the run fails with this summary


TaskEvent = TaskStarted | TaskExit


class Executor(abc.ABC):
    """Runs tasks somewhere; reports each start as a TaskStarted and each exit as a TaskExit on
    ``events``. An executor that cannot tell when its tasks start says so with
    ``reports_start = False``: their ``@timeout`` then counts from submission."""

    name = "executor"
    reports_start = False

    def __init__(self) -> None:
        self.events: queue.Queue[TaskEvent] = queue.Queue()

    def start(self) -> None:
        """Get ready to take tasks (called before the orchestrator starts any thread)."""

    @abc.abstractmethod
    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        """Start a task whose output goes to the given log files."""

    @abc.abstractmethod
    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        """Stop a task: SIGTERM then SIGKILL after grace seconds (0: kill at once)."""

    def close(self) -> None:
        """Release resources; running tasks are killed."""


def queue_times(submitted_at: float | None, started_at: float | None) -> dict[str, Any]:
    """A task record's timing fields: ``submitted_at`` and, once the task has started,
    ``started_at`` and ``queued_seconds`` (submission to start: RUNNABLE, image pull, container
    creation; none of it counts towards ``@timeout``). Epoch seconds."""
    times: dict[str, Any] = {"submitted_at": round(submitted_at, 3) if submitted_at else None}
    if submitted_at and started_at:
        times["started_at"] = round(started_at, 3)
        times["queued_seconds"] = round(max(0.0, started_at - submitted_at), 3)
    return times
