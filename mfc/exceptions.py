"""Exceptions shared by every part of mfc.

User mistakes raise :class:`MfcError` (exit code 2); a run whose task failed raises
:class:`RunFailed` (exit code 1). The CLI catches both once and prints one line. What does not
stop the command is a :func:`warn` line.
"""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """Tell the user something that does not stop the command: ``mfc: warning: ...`` on stderr."""
    print(f"mfc: warning: {message}", file=sys.stderr, flush=True)


class MfcError(Exception):
    """A mistake the user can fix: bad flag, invalid flow, missing file. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        # The message itself, also for subclasses of KeyError (whose own str is the key's repr).
        text = str(self.args[0]) if self.args else ""
        return f"{text} ({self.hint})" if self.hint else text


class InvalidFlow(MfcError):
    """The flow's source or graph is invalid; the message names the file and line."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, hint: str | None = None):
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}", hint)
        self.file = file
        self.line = line


class RunFailed(Exception):
    """A run failed because a task failed after its retries. Exit code 1."""

    exit_code = 1


class Interrupted(RunFailed):
    """Ctrl-C (exit code 130) or SIGTERM (143) stopped the run; every task was stopped and the run
    marked interrupted."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so both stop a run the same way."""

    exit_code = 143


class CaughtException:
    """What ``@catch(var=...)`` stores: the failed step's exception, as plain data so it loads
    anywhere (the exception's own class may not be importable where the artifact is read)."""

    def __init__(self, type_name: str, message: str, stacktrace: str, where: str = "") -> None:
        self.type = type_name
        self.exception = message
        self.stacktrace = stacktrace
        self.where = where

    def __str__(self) -> str:
        return f"{self.type}: {self.exception}"

    def __repr__(self) -> str:
        return f"<CaughtException {self}>"


class TimeoutException(Exception):
    """A task ran past its @timeout (what @catch stores for it)."""


class TaskKilled(Exception):
    """A task's process died (signal, os._exit) before it could record a result."""


class ParameterReadOnly(MfcError, AttributeError):
    """Assigning to a parameter inside a step (an AttributeError, as in Metaflow)."""
