"""A run's timeline for the UI: one bar per task attempt, from its start to its end (or to now
while it runs), placed as fractions of the run's span and grouped by step in the graph's order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mfc.taskid import sort_key

MAX_BARS = 600  # beyond this the page says how many it left out (a huge foreach would swamp the browser)


@dataclass(frozen=True)
class AttemptSpan:
    """What the timeline needs of an attempt row."""

    step: str
    task_id: str
    attempt: int
    started_at: float | None
    finished_at: float | None
    ending: str | None


@dataclass(frozen=True)
class Bar:
    """One attempt's bar: ``left`` and ``width`` in percent of the run's span."""

    step: str
    task_id: str
    attempt: int
    ending: str
    left: float
    width: float
    seconds: float


@dataclass(frozen=True)
class Timeline:
    """Bars grouped by step, the span they cover (seconds) and how many bars were left out."""

    groups: list[tuple[str, list[Bar]]]
    span: float
    omitted: int


def timeline(spans: Iterable[AttemptSpan], step_order: Sequence[str], start: float, now: float,
             max_bars: int = MAX_BARS) -> Timeline:
    """The timeline of a run that started at ``start``, as seen at ``now``. Attempts that have not
    started are left out; steps the graph does not name come after the ones it does."""
    started = [s for s in spans if s.started_at is not None]
    rank = {name: i for i, name in enumerate(step_order)}
    started.sort(key=lambda s: (rank.get(s.step, len(rank)), s.step, sort_key(s.task_id), s.attempt))
    shown, omitted = started[:max_bars], max(len(started) - max_bars, 0)
    ends = [(s.finished_at if s.finished_at is not None else now) for s in shown]
    origin = min([start, *(float(s.started_at) for s in shown if s.started_at is not None)])
    span = max([*ends, origin]) - origin or 1e-9
    groups: dict[str, list[Bar]] = {}
    for s, end in zip(shown, ends, strict=True):
        begin = float(s.started_at or origin)
        seconds = max(end - begin, 0.0)
        groups.setdefault(s.step, []).append(Bar(
            s.step, s.task_id, s.attempt, s.ending or "running",
            left=round(100 * (begin - origin) / span, 3), width=round(max(100 * seconds / span, 0.4), 3),
            seconds=seconds))
    return Timeline(list(groups.items()), span, omitted)
