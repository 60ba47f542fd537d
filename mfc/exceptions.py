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


class SwitchError(MfcError):
    """A switch's condition is not set, or its value is none of the cases (the task fails in one line)."""


class ParameterReadOnly(MfcError, AttributeError):
    """Assigning to a parameter inside a step (an AttributeError, as in Metaflow)."""


class CorruptArtifact(MfcError):
    """A content-addressed object (an artifact, a code package) whose stored bytes do not hash to
    its address, are cut short or cannot be decoded. Never a value: the read fails. Exit code 1.

    The store that finds it knows the object (``sha``, ``location``: its path or URL); callers
    that know more add the task's pathspec and the artifact's name with :meth:`within`.
    """

    exit_code = 1
    state = "is corrupt"
    default_hint = "`mfc verify` lists every damaged part of a run; `mfc resume` reruns the steps that made them"

    def __init__(self, why: str, *, sha: str | None = None, location: str | None = None,
                 hint: str | None = None) -> None:
        self.why = why
        self.sha = sha
        self.location = location
        self.pathspec: str | None = None
        self.name: str | None = None
        self.what: str | None = None
        super().__init__(self._text(), hint if hint is not None else (self.default_hint if sha else None))

    def _text(self) -> str:
        owner = f"{self.pathspec}: " if self.pathspec else ""
        name = f"{self.what}: " if self.what else ""
        if self.sha is None:
            return f"{owner}{name}{self.why}"
        where = f" at {self.location}" if self.location else ""
        why = f": {self.why}" if self.why else ""
        return f"{owner}{name}data {self.sha[:12]}{where} {self.state}{why}"

    def within(self, pathspec: str | None = None, name: str | None = None, what: str | None = None) -> CorruptArtifact:
        """Name the task (``Flow/run/step/task``) and the artifact this object is (or ``what`` it
        is, e.g. "code package"); the first caller to say wins. Returns self."""
        self.pathspec = self.pathspec or pathspec
        self.name = self.name or name
        self.what = self.what or what or (f"artifact {name!r}" if name else None)
        self.args = (self._text(),)
        return self


class MissingData(CorruptArtifact):
    """A content-addressed object that a record names but the datastore does not hold."""

    state = "is missing"
    default_hint = "it was deleted or never written; `mfc verify` lists what a run lacks; `mfc resume` reruns the steps that made it"


class MalformedRecord(MfcError):
    """A JSON record of the datastore (``_run.json``, ``_status.json``, ``_tags.json``, a task's
    ``<attempt>.json``) that does not parse or lacks what every such record has. Exit code 1."""

    exit_code = 1

    def __init__(self, location: str, why: str) -> None:
        super().__init__(f"malformed record {location}: {why}")
        self.location = location
        self.why = why


class MissingRecord(MfcError):
    """A task (or step) that a finished run should have recorded but whose record is gone. Exit code 1."""

    exit_code = 1
