"""The executor interface: ``submit(spec) -> Handle``; a handle's exit arrives as an event on
the orchestrator's queue; ``kill(handle)`` stops a task; logs are files the orchestrator tails."""

from __future__ import annotations

import abc
import queue
from dataclasses import dataclass, field

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
class TaskExit:
    """A task's end as its executor saw it: exit code (negative: killed by that signal)."""

    key: str
    code: int
    error: str | None = None
    executor_failure: str | None = None  # the executor itself died: the run fails with this summary


class Executor(abc.ABC):
    """Runs tasks somewhere; reports each exit as a TaskExit on ``events``."""

    name = "executor"

    def __init__(self) -> None:
        self.events: queue.Queue[TaskExit] = queue.Queue()

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
