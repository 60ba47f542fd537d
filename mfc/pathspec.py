"""One grammar for every part of a pathspec: ``Flow/run_id/step/task_id`` (and an artifact name or
an attempt where one is asked for).

- flow, step and artifact names are Python identifiers (what a class, a method and an attribute
  can be called);
- run and task ids are letters, digits, ``_``, ``.`` and ``-``, starting with a letter or a digit
  (``1733100000000``, ``train-3``, ``cell-1-2``), so never ``.`` or ``..``;
- an attempt is a non-negative integer.

Input is checked here once, where it enters (the command line, the client constructors), before
any store is touched: nothing downstream builds a path from an unchecked string. A bad part is
an :class:`InvalidPathspec` naming the part and its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from mfc.exceptions import MfcError

MAX_PART = 255  # one path component on every filesystem we write to
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# The part at each position of a pathspec, as messages name it.
KINDS = ("flow", "run id", "step", "task id", "artifact")

# Client object -> the pathspec shape it takes.
SHAPES = {
    "Flow": "FlowName",
    "Run": "FlowName/run_id",
    "Step": "FlowName/run_id/step",
    "Task": "FlowName/run_id/step/task_id",
    "DataArtifact": "FlowName/run_id/step/task_id/name",
}


class InvalidPathspec(MfcError, ValueError):
    """A pathspec, or one part of it, that breaks the grammar (exit code 2)."""


def _problem(value: Any, kind: str) -> str | None:
    """Why ``value`` is not a valid ``kind`` (one of KINDS), or None if it is."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value:
        return "is empty"
    if value in (".", ".."):
        return "is not allowed (no part may be '.' or '..')"
    if "/" in value or "\\" in value:
        return "must not contain '/' or '\\'"
    if _CONTROL.search(value) or any(c.isspace() for c in value):
        return "must not contain whitespace or control characters"
    if len(value) > MAX_PART:
        return f"is longer than {MAX_PART} characters"
    if kind in ("run id", "task id"):
        if not _ID.fullmatch(value):
            return "may hold only letters, digits, '_', '.' and '-', starting with a letter or digit"
    elif not value.isidentifier():
        return "must be a Python identifier"
    return None


def _fail(kind: str, value: Any, why: str, pathspec: str | None) -> InvalidPathspec:
    where = f"pathspec {pathspec!r}: " if pathspec is not None else ""
    shown = value if not isinstance(value, str) else value[:80] + ("..." if len(value) > 80 else "")
    return InvalidPathspec(f"{where}{kind} {shown!r} {why}")


def check_part(value: Any, kind: str, pathspec: str | None = None) -> str:
    """``value`` if it is a valid ``kind`` (``flow``, ``run id``, ``step``, ``task id`` or
    ``artifact``), else InvalidPathspec naming the part (and the pathspec it came from)."""
    why = _problem(value, kind)
    if why is not None:
        raise _fail(kind, value, why, pathspec)
    return value


def check_flow(name: Any) -> str:
    """A valid flow name, or InvalidPathspec."""
    return check_part(name, "flow")


def check_run_id(run_id: Any) -> str:
    """A valid run id, or InvalidPathspec."""
    return check_part(run_id, "run id")


def check_step(name: Any) -> str:
    """A valid step name, or InvalidPathspec."""
    return check_part(name, "step")


def check_task_id(task_id: Any) -> str:
    """A valid task id, or InvalidPathspec."""
    return check_part(task_id, "task id")


def check_attempt(attempt: Any) -> int:
    """A valid attempt number (a non-negative int, or a string of digits), or InvalidPathspec."""
    if isinstance(attempt, bool) or not isinstance(attempt, (int, str)):
        raise _fail("attempt", attempt, "must be a non-negative integer", None)
    if isinstance(attempt, str):
        if not (attempt.isascii() and attempt.isdigit()):
            raise _fail("attempt", attempt, "must be a non-negative integer", None)
        attempt = int(attempt)
    if attempt < 0:
        raise _fail("attempt", attempt, "must be a non-negative integer", None)
    return attempt


def is_valid(value: Any, kind: str) -> TypeGuard[str]:
    """True if ``value`` is a valid ``kind``: for names read back from a store listing, which
    skips what does not fit instead of failing."""
    return _problem(value, kind) is None


@dataclass(frozen=True)
class Pathspec:
    """A checked ``Flow[/run_id[/step[/task_id[/artifact]]]]``."""

    flow: str
    run_id: str | None = None
    step: str | None = None
    task_id: str | None = None
    artifact: str | None = None

    @property
    def parts(self) -> list[str]:
        return [p for p in (self.flow, self.run_id, self.step, self.task_id, self.artifact) if p is not None]

    def __str__(self) -> str:
        return "/".join(self.parts)


def _split(pathspec: Any, max_parts: int, what: str) -> list[str]:
    if not isinstance(pathspec, str):
        raise InvalidPathspec(f"{what} must be a string like 'Flow/run_id', not {type(pathspec).__name__}")
    parts = pathspec.split("/")
    for kind, part in zip(KINDS[:max_parts], parts, strict=False):
        check_part(part, kind, pathspec)
    return parts


def parse_pathspec(pathspec: Any, min_parts: int = 2, max_parts: int = 4) -> Pathspec:
    """Check ``Flow/run_id[/step[/task_id]]`` (between ``min_parts`` and ``max_parts`` parts) as
    given on the command line; every part follows the grammar, none may be empty."""
    parts = _split(pathspec, max_parts, "a pathspec")
    if not min_parts <= len(parts) <= max_parts:
        names = ["Flow", "run_id", "step", "task_id", "artifact"][:max_parts]
        shape = "/".join(names[:min_parts]) + "".join(f"[/{n}" for n in names[min_parts:]) + "]" * (max_parts - min_parts)
        raise InvalidPathspec(f"pathspec {pathspec!r}: expected {shape}")
    return Pathspec(*parts)


def split_pathspec(pathspec: Any, kind: str) -> list[str]:
    """The parts of the pathspec of a client object (``Flow``, ``Run``, ``Step``, ``Task``,
    ``DataArtifact``): exactly its shape, every part valid."""
    shape = SHAPES[kind]
    size = shape.count("/") + 1
    if not isinstance(pathspec, str):
        raise InvalidPathspec(f"{kind}() takes a pathspec string like {shape!r}, not {type(pathspec).__name__}")
    parts = _split(pathspec, size, f"{kind} pathspec")
    if len(parts) != size:
        raise InvalidPathspec(f"{kind} pathspec {pathspec!r}: expected {shape}")
    return parts
