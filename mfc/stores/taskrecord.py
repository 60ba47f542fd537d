"""The task attempt record: one versioned type, written once per attempt.

Every writer (the task itself, the orchestrator for a task that died, a resume's clones, the
run's parameters) builds a :class:`TaskRecord`; every reader parses one with
:meth:`TaskRecord.from_json`, which sits on :func:`mfc.stores.records.parse_record` and reads
the untyped dict records of older runs too (their ``ending`` is inferred from ``status``,
``died`` and ``caught``).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any

FORMAT = 1


class Ending(str, enum.Enum):
    """How an attempt ended. Only ``OK`` and ``CAUGHT`` succeed; the orchestrator writes the
    records of attempts that ended without writing their own (``DIED``, ``TIMED_OUT``,
    ``INTERRUPTED``, ``STOPPED``)."""

    OK = "ok"
    CAUGHT = "caught"  # the step raised and @catch recorded the exception
    FAILED = "failed"  # the step raised (or broke the flow's rules)
    DIED = "died"  # the process ended without a record: a signal, os._exit, a lost executor
    TIMED_OUT = "timed_out"  # killed by @timeout
    INTERRUPTED = "interrupted"  # stopped because the run was interrupted (Ctrl-C, SIGTERM)
    STOPPED = "stopped"  # stopped because another task failed the run

    @property
    def succeeded(self) -> bool:
        return self in (Ending.OK, Ending.CAUGHT)

    @property
    def died(self) -> bool:
        """True when the orchestrator, not the task, wrote the record."""
        return self in (Ending.DIED, Ending.TIMED_OUT, Ending.INTERRUPTED, Ending.STOPPED)


@dataclass
class TaskRecord:
    """One attempt of one task. ``status`` (``ok``/``failed``) and ``died`` stay in the JSON
    for readers of older records; ``ending`` is what code decides on."""

    pathspec: str
    attempt: int
    ending: Ending
    artifacts: dict[str, list] = field(default_factory=dict)
    foreach_stack: list[dict] = field(default_factory=list)
    foreach: dict[str, Any] | None = None  # a foreach's split: var, num_splits, split (key of the split file)
    next: str | None = None  # the step a switch chose (left out of the JSON for every other step)
    exception: dict[str, Any] | None = None
    caught: dict[str, Any] | None = None
    started_at: float | None = None
    finished_at: float | None = None
    origin_run_id: str | None = None
    origin_pathspec: str | None = None
    # The attempt's @card cards: {"id", "type", "key" (the HTML blob's key)}; left out of the JSON
    # when there are none, so a record without cards reads as it did before cards existed.
    cards: list[dict] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know: kept as they are
    format: int = FORMAT

    @property
    def status(self) -> str:
        return "ok" if self.ending.succeeded else "failed"

    @property
    def died(self) -> bool:
        return self.ending.died

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.extra}
        for f in fields(self):
            if f.name != "extra":
                data[f.name] = getattr(self, f.name)
        data["ending"] = self.ending.value
        data["status"] = self.status
        if self.died:
            data["died"] = True
        for optional in ("caught", "started_at", "origin_pathspec", "next"):
            if data[optional] is None:
                del data[optional]
        if not data["cards"]:
            del data["cards"]
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        """A record from its dict form, this version's or an older untyped one."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k not in ("status", "died")}
        values["ending"] = Ending(data["ending"]) if "ending" in data else _legacy_ending(data)
        values.setdefault("pathspec", "")
        values.setdefault("attempt", 0)
        values["foreach_stack"] = list(values.get("foreach_stack") or [])
        values["cards"] = [dict(c) for c in values.get("cards") or [] if isinstance(c, dict)]
        values["format"] = int(data.get("format", 0))
        return cls(**values, extra=extra)

    @classmethod
    def from_json(cls, data: bytes, where: str) -> TaskRecord:
        """Parse a stored record; MalformedRecord naming ``where`` if it is damaged."""
        from mfc.exceptions import MalformedRecord
        from mfc.stores.records import TASK_FIELDS, parse_record

        parsed = parse_record(data, where, TASK_FIELDS)
        try:
            return cls.from_dict(parsed)
        except (ValueError, TypeError) as exc:
            raise MalformedRecord(where, f"its fields do not fit a task record ({exc})") from None


def _legacy_ending(data: dict[str, Any]) -> Ending:
    if data.get("status") == "ok":
        return Ending.CAUGHT if data.get("caught") else Ending.OK
    return Ending.DIED if data.get("died") else Ending.FAILED
