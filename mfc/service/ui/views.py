"""What each page shows, built from the tables (:mod:`mfc.service.ui.queries`) and the
service's merged run (the one place a run's status comes from): plain data for the templates."""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Connection, Row

from mfc.service.ui import queries
from mfc.service.ui.dag import (
    NODE_HEIGHT,
    NODE_WIDTH,
    STATUS_FILL,
    TaskState,
    layout,
    step_views,
    task_status,
)
from mfc.service.ui.timeline import AttemptSpan, timeline
from mfc.taskid import sort_key

PAGE_SIZE = 50
TASK_LINKS = 40  # task links listed a step in the run page's steps table
LOG_LINES = 200
PARAMETER_CHARS = 200

Merge = Callable[[Row, float | None], dict[str, Any]]  # (run row, its last task activity) -> merged run


def driver_kind(run: dict[str, Any]) -> str:
    """What drives the run: ``sfn`` for a Step Functions execution, else the driver's kind
    (``local`` for the orchestrator of ``mfc run``, which records none)."""
    driver = run.get("driver")
    return str(driver.get("kind") or "local") if isinstance(driver, dict) else "local"


def short(value: Any, chars: int = PARAMETER_CHARS) -> str:
    """A value as a short text (a string as it is, anything else by its repr), cut at ``chars``."""
    text = value if isinstance(value, str) else reprlib.repr(value)
    return text if len(text) <= chars else text[:chars - 1] + "…"


def run_context(conn: Connection, row: Row, merge: Merge, now: float, can_write: bool) -> dict[str, Any]:
    """The run page: summary, DAG, timeline and steps table."""
    attempts = queries.run_attempts(conn, row.id)
    activity = max((max(a.started_at or 0.0, a.finished_at or 0.0) for a in attempts), default=None)
    run = merge(row, activity)
    ended = run["status"] != "running"
    graph: dict[str, Any] = dict(run["graph"]) if isinstance(run.get("graph"), dict) else {}
    latest: dict[str, dict[str, Row]] = {}
    for a in attempts:  # ordered by attempt: the last one seen is the task's latest
        latest.setdefault(a.step, {})[a.task_id] = a
    for step in latest:
        graph.setdefault(step, ["linear", [], None, False])  # a step the summary lacks still shows
    foreach_steps = [name for name, spec in graph.items() if isinstance(spec, list) and len(spec) > 2 and spec[2]]
    tasks = {step: [TaskState(a.ending, bool(a.final)) for a in by_task.values()] for step, by_task in latest.items()}
    views = step_views(graph, tasks, queries.foreach_splits(conn, row.id, foreach_steps), ended)
    dag = layout(graph)
    order = sorted(dag.nodes, key=lambda n: (dag.nodes[n].layer, dag.nodes[n].column))
    end = float(run["finished_at"]) if ended and run.get("finished_at") else now
    spans = [AttemptSpan(a.step, a.task_id, a.attempt, a.started_at, a.finished_at, a.ending) for a in attempts]
    steps = []
    for name in order:
        by_task = latest.get(name, {})
        starts = [a.started_at for a in attempts if a.step == name and a.started_at is not None]
        ends = [a.finished_at or end for a in attempts if a.step == name and a.started_at is not None]
        steps.append({"name": name, "view": views[name],
                      "tasks": [{"task_id": t, "item": a.foreach_item}
                                for t, a in sorted(by_task.items(), key=lambda kv: sort_key(kv[0]))],
                      "started_at": min(starts, default=None),
                      "duration": (max(ends) - min(starts)) if starts else None})
    parameters: dict[str, Any] = run["parameters"] if isinstance(run.get("parameters"), dict) else {}
    return {"run": run, "driver": driver_kind(run), "dag": dag, "views": views, "fills": STATUS_FILL,
            "node_w": NODE_WIDTH, "node_h": NODE_HEIGHT, "steps": steps, "task_links": TASK_LINKS,
            "timeline": timeline(spans, order, float(row.created_at), end),
            "parameters": [(k, short(v)) for k, v in sorted(parameters.items())],
            "can_terminate": can_write and not ended and driver_kind(run) == "sfn"}


def _exception_text(exception: Any) -> str | None:
    if not exception:
        return None
    if isinstance(exception, dict):
        head = ": ".join(str(exception[k]) for k in ("type", "message") if exception.get(k))
        trace = exception.get("traceback")
        return "\n".join(x for x in (str(trace).rstrip() if trace else "", head) if x) or short(exception)
    return str(exception)


def _artifacts(conn: Connection, row: Row, a: Row) -> list[dict[str, Any]]:
    """The attempt's artifact index; from its record when the index table has none of it."""
    indexed = queries.attempt_artifacts(conn, row.id, a.step, a.task_id, a.attempt)
    if indexed:
        return [{"name": x.name, "type": x.type, "size": x.size, "preview": x.preview} for x in indexed]
    found = (a.record or {}).get("artifacts") or {}
    return [{"name": name, "type": ref[2] if len(ref) > 2 else None, "size": ref[1] if len(ref) > 1 else None,
             "preview": None} for name, ref in sorted(found.items()) if isinstance(ref, list)]


def tail(text: str, lines: int = LOG_LINES) -> str:
    """The last ``lines`` lines of a log."""
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


def task_context(conn: Connection, row: Row, attempts: Sequence[Row], merge: Merge, now: float,
                 chosen: int | None, read_log: Callable[[Row, str], str],
                 card_url: Callable[[Row, str], str]) -> dict[str, Any]:
    """The task page: foreach index and item, attempts, and for one attempt (the latest, or
    ``chosen``) its exception, log tails, artifacts and cards. ``read_log(attempt, stream)``
    reads a log from the datastore; ``card_url(attempt, card_id)`` is where its iframe points."""
    run = merge(row, max((a.finished_at or a.started_at or 0.0) for a in attempts))
    ended = run["status"] != "running"
    latest = attempts[-1]
    status = task_status(TaskState(latest.ending, bool(latest.final)), ended)
    shown_row = next((a for a in attempts if a.attempt == chosen), latest)
    shown = {"attempt": shown_row.attempt, "ending": shown_row.ending,
             "exception": _exception_text((shown_row.record or {}).get("exception")),
             "logs": {stream: tail(read_log(shown_row, stream)) for stream in ("stdout", "stderr")},
             "artifacts": _artifacts(conn, row, shown_row),
             "cards": [{"id": c.card_id, "type": c.type, "url": card_url(shown_row, c.card_id)}
                       for c in queries.attempt_cards(conn, row.id, shown_row.step, shown_row.task_id,
                                                      shown_row.attempt)]}
    rows = [{"attempt": a.attempt, "ending": a.ending, "final": a.final, "started_at": a.started_at,
             "duration": ((a.finished_at or (None if ended else now)) or a.started_at or 0.0) - (a.started_at or 0.0)
             if a.started_at is not None else None, "host": a.host} for a in attempts]
    first = attempts[0]
    return {"run": run, "status": status, "attempts": rows, "shown": shown, "log_lines": LOG_LINES,
            "foreach_index": first.foreach_index, "foreach_item": first.foreach_item,
            "live": status == "running" and not ended}


def next_fires(schedule: dict[str, Any] | None, since: float, now: float, count: int = 3) -> list[str]:
    """The next fire times of an enabled schedule (UTC, ISO to the minute); none when it is
    disabled or does not parse."""
    from mfc.events.expressions import ScheduleError, parse_schedule

    if not schedule or not schedule.get("expression") or schedule.get("enabled") is False:
        return []
    try:
        fires = parse_schedule(str(schedule["expression"])).next_fires(
            datetime.fromtimestamp(now, timezone.utc), count, timezone=schedule.get("timezone") or None,
            start=datetime.fromtimestamp(since, timezone.utc))
    except (ScheduleError, ValueError):
        return []
    return [f.strftime("%Y-%m-%d %H:%M UTC") for f in fires]


def deployments_context(conn: Connection, now: float) -> list[dict[str, Any]]:
    """The deployments page: each deployment with its next three fire times."""
    return [{"name": d.name, "flow": d.flow, "state_machine_arn": d.state_machine_arn, "region": d.region,
             "schedule": d.schedule, "triggers": d.triggers or [],
             "next_fires": next_fires(d.schedule, float(d.created_at), now)} for d in queries.all_deployments(conn)]
