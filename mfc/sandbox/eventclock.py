"""The sandbox's event clock and Step Functions delivery: what EventBridge and EventBridge Scheduler
do on AWS and moto does not (moto stores rules and schedules but never fires them, and delivers no
event to a state machine). It runs inside the moto server process (see :mod:`mfc.sandbox.moto_shims`,
which wires it into moto) and uses moto's backends directly.

* :func:`deliver` sends one event to a rule's targets: a state machine target gets an execution
  whose input is the target's ``Input``, its ``InputTransformer`` applied to the event
  (:func:`transform_input`), its ``InputPath`` of the event, or the event itself; other targets go
  to moto's own delivery.
* :func:`status_change_entry` is the ``PutEvents`` entry AWS puts on the default bus when a
  Step Functions execution ends ("Step Functions Execution Status Change").
* The clock: every second :func:`tick` evaluates every ENABLED rule with a ``ScheduleExpression``
  and a state machine target, and every ENABLED Scheduler schedule (in its
  ``ScheduleExpressionTimezone``, between its ``StartDate`` and ``EndDate``), and fires each fire time that passed since the last tick, once.
  A schedule seen for the first time fires first at its next fire time, never at once. The clock
  reads the wall clock plus an offset that :func:`configure` moves (tests advance it over HTTP:
  ``POST /moto-api/config {"mfc": {"advance": 61}}``; see :func:`mfc.sandbox.control.advance_clock`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

SFN_SOURCE = "aws.states"
STATUS_CHANGE = "Step Functions Execution Status Change"
SCHEDULED_EVENT = "Scheduled Event"
# Fire times started per schedule in one tick at most (an advance of a day on rate(1 minute) is 1440).
MAX_CATCH_UP = 10_000
TICK_SECONDS = 1.0

_lock = threading.RLock()
_offset = 0.0
_due: dict[tuple[str, ...], dt.datetime | None] = {}
_reported: set[tuple[str, ...]] = set()
_thread: threading.Thread | None = None


def _log(message: str) -> None:
    sys.stderr.write(f"mfc eventclock: {message}\n")
    sys.stderr.flush()


# --- delivery ------------------------------------------------------------------------------------


def is_state_machine(arn: str) -> bool:
    """Whether ``arn`` names a Step Functions state machine (``arn:aws:states:r:a:stateMachine:n``)."""
    parts = arn.split(":")
    return len(parts) >= 7 and parts[2] == "states" and parts[5] == "stateMachine"


def _iso(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def public_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a target sees it: moto keeps ``time`` as epoch seconds and an internal
    ``ingestion-time``; AWS sends ``time`` as ISO 8601 and no ingestion time."""
    out = {k: v for k, v in event.items() if k != "ingestion-time"}
    if "time" in out:
        out["time"] = _iso(out["time"])
    return out


def _path_value(path: str, event: dict[str, Any]) -> tuple[bool, Any]:
    from jsonpath_ng.ext import parse  # moto's own dependency for InputPathsMap

    matches = parse(path).find(event)
    return (True, matches[0].value) if matches else (False, None)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def transform_input(template: str, paths_map: dict[str, str], event: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> str:
    """``InputTransformer``: fill each ``<name>`` of ``template`` with the value ``paths_map[name]``
    selects in ``event`` (or a predefined ``aws.events.*`` variable in ``extra``). Outside a JSON
    string a value goes in as JSON (a string gets quotes, a missing path is ``null``); inside one
    as text, escaped so the result stays JSON. Placeholders nobody defines stay as written.

    >>> transform_input('{"p": {"a": <a>, "b": "id <b>"}}', {"a": "$.detail.a", "b": "$.detail.b"},
    ...                 {"detail": {"a": "x", "b": 7}})
    '{"p": {"a": "x", "b": "id 7"}}'
    """
    values: dict[str, tuple[bool, Any]] = {k: (True, v) for k, v in (extra or {}).items()}
    values.update({name: _path_value(path, event) for name, path in paths_map.items()})

    def fill(text: str, quoted: bool) -> str:
        def one(match: re.Match[str]) -> str:
            found = values.get(match.group(1))
            if found is None:
                return match.group(0)
            present, value = found
            if quoted:
                text_value = value if isinstance(value, str) else ("" if not present else json.dumps(value))
                return json.dumps(text_value)[1:-1]
            return json.dumps(value)

        return _PLACEHOLDER.sub(one, text)

    out, pos = [], 0
    for literal in _STRING.finditer(template):
        out.append(fill(template[pos:literal.start()], quoted=False))
        out.append(fill(literal.group(0), quoted=True))
        pos = literal.end()
    out.append(fill(template[pos:], quoted=False))
    return "".join(out)


def target_input(target: dict[str, Any], event: dict[str, Any], rule_name: str = "", rule_arn: str = "") -> str:
    """The input EventBridge hands ``target`` for ``event`` (the public shape, see :func:`public_event`)."""
    if target.get("Input") is not None:
        return str(target["Input"])
    transformer = target.get("InputTransformer")
    if transformer:
        extra = {"aws.events.rule-arn": rule_arn, "aws.events.rule-name": rule_name,
                 "aws.events.event": event, "aws.events.event.json": event,
                 "aws.events.event.ingestion-time": event.get("time")}
        return transform_input(transformer.get("InputTemplate") or "<aws.events.event>",
                               transformer.get("InputPathsMap") or {}, event, extra)
    if target.get("InputPath"):
        present, value = _path_value(target["InputPath"], event)
        return json.dumps(value if present else None)
    return json.dumps(event)


def start_execution(state_machine_arn: str, execution_input: str | None, why: str) -> str | None:
    """StartExecution through moto's Step Functions backend; the execution's ARN, or None (logged)
    when it cannot start (AWS drops such a delivery too)."""
    from moto.stepfunctions.responses import get_backend

    parts = state_machine_arn.split(":")
    try:
        backend = get_backend(parts[4], parts[3])
        execution = backend.start_execution(state_machine_arn, name=str(uuid.uuid4()),
                                            execution_input=execution_input or "{}")
    except Exception as exc:  # noqa: BLE001 - one failed delivery must not stop the others
        _log(f"{why}: could not start {state_machine_arn}: {type(exc).__name__}: {exc}")
        return None
    _log(f"{why}: started {execution.execution_arn}")
    return str(execution.execution_arn)


Others = Callable[[Any, list[dict[str, Any]], dict[str, Any]], None]


def deliver(rule: Any, event: dict[str, Any], others: Others) -> None:
    """Send ``event`` (moto's internal shape) to every target of ``rule``: state machines here,
    the rest through ``others(rule, targets, event)`` (moto's own delivery)."""
    machines = [t for t in rule.targets if is_state_machine(t.get("Arn", ""))]
    rest = [t for t in rule.targets if not is_state_machine(t.get("Arn", ""))]
    if rest:
        try:
            others(rule, rest, event)
        except Exception as exc:  # noqa: BLE001 - e.g. moto's NotImplementedError for a Lambda target
            _log(f"rule {rule.name}: moto could not deliver to {[t.get('Arn') for t in rest]}: {exc}")
    shown = public_event(event)
    for target in machines:
        try:
            text = target_input(target, shown, rule.name, rule.arn)
        except Exception as exc:  # noqa: BLE001 - a bad transformer drops this delivery, as on AWS
            _log(f"rule {rule.name}: bad input for target {target.get('Id')}: {exc}")
            continue
        start_execution(target["Arn"], text, f"rule {rule.name}")


def _millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, dt.datetime) else None


def status_change_entry(execution: Any) -> dict[str, Any]:
    """The ``PutEvents`` entry for an ended moto ``Execution``, in AWS's shape."""
    machine = execution.state_machine
    status = execution.exec_status.value if hasattr(execution.exec_status, "value") else str(execution.exec_status)
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": getattr(machine, "source_arn", None) or machine.arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": json.dumps(execution.input_data, separators=(",", ":")),
        "inputDetails": {"included": True},
        "output": json.dumps(execution.output, separators=(",", ":")) if status == "SUCCEEDED" else None,
        "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
    }
    return {"Source": SFN_SOURCE, "DetailType": STATUS_CHANGE, "Detail": json.dumps(detail),
            "Resources": [execution.exec_arn]}


def publish_status_change(execution: Any) -> None:
    """Put :func:`status_change_entry` on the default bus of the execution's account and region."""
    from moto.events.models import events_backends

    try:
        events_backends[execution.account_id][execution.region_name].put_events([status_change_entry(execution)])
    except Exception as exc:  # noqa: BLE001 - the execution has ended either way
        _log(f"status change of {execution.exec_arn} not published: {type(exc).__name__}: {exc}")


# --- the clock -----------------------------------------------------------------------------------


def now() -> dt.datetime:
    """The clock's time: the wall clock plus the offset, aware, in UTC."""
    return dt.datetime.fromtimestamp(time.time() + _offset, dt.timezone.utc)


@dataclass(frozen=True)
class Timer:
    """One schedule the clock evaluates: ``fire(at)`` starts what it targets for fire time ``at``."""

    key: tuple[str, ...]
    arn: str
    expression: str
    timezone: str | None
    fire: Callable[[dt.datetime], None]
    start: dt.datetime | None = None  # a Scheduler schedule's StartDate: no fire before it
    end: dt.datetime | None = None  # its EndDate: none after it

    def active(self, at: dt.datetime) -> bool:
        """Whether a fire time ``at`` lies within the schedule's start and end dates."""
        return (self.start is None or at >= self.start) and (self.end is None or at <= self.end)


@lru_cache(maxsize=256)
def _parsed(expression: str) -> Any:
    from mfc.events.expressions import parse_schedule

    return parse_schedule(expression)


def next_after(expression: str, timezone: str | None, after: dt.datetime) -> dt.datetime | None:
    """The first fire time of ``expression`` strictly after ``after`` (None when there is none)."""
    later = [t for t in _parsed(expression).next_fires(after, 2, timezone) if t > after]
    return min(later) if later else None


def _next_of(expression: str, timezone: str | None, after: dt.datetime) -> dt.datetime | None:
    return next_after(expression, timezone, after)


def advance_due(due: dt.datetime | None, until: dt.datetime,
                following: Callable[[dt.datetime], dt.datetime | None],
                limit: int = MAX_CATCH_UP) -> tuple[list[dt.datetime], dt.datetime | None]:
    """The fire times from ``due`` up to ``until`` (inclusive), each once, and the next one after them."""
    fired: list[dt.datetime] = []
    while due is not None and due <= until and len(fired) < limit:
        fired.append(due)
        due = following(due)
    return fired, due


def _backends(backend_dict: Any) -> Iterator[Any]:
    # dict's own items: moto's lookups would create a backend for every region they are asked about.
    for account in list(dict.values(backend_dict)):
        yield from list(dict.values(account))


def _rule_timers(others: Others) -> Iterator[Timer]:
    from moto.events.models import events_backends

    for backend in _backends(events_backends):
        for bus in list(backend.event_buses.values()):
            for rule in list(bus.rules.values()):
                if (not rule.scheduled_expression or rule.state != "ENABLED"
                        or not any(is_state_machine(t.get("Arn", "")) for t in rule.targets)):
                    continue

                def fire(at: dt.datetime, rule: Any = rule, backend: Any = backend) -> None:
                    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": SCHEDULED_EVENT,
                             "source": "aws.events", "account": backend.account_id, "time": at.timestamp(),
                             "region": backend.region_name, "resources": [rule.arn], "detail": {}}
                    deliver(rule, event, others)

                yield Timer(("rule", rule.arn, rule.scheduled_expression), rule.arn,
                            rule.scheduled_expression, None, fire)


def _moment(value: Any) -> dt.datetime | None:
    """A Scheduler StartDate/EndDate as moto keeps it (epoch seconds, or ISO text) in UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    return None


def _scheduler_timers() -> Iterator[Timer]:
    from moto.scheduler.models import scheduler_backends

    for backend in _backends(scheduler_backends):
        for group in list(backend.schedule_groups.values()):
            for schedule in list(group.schedules.values()):
                arn = (schedule.target or {}).get("Arn", "")
                if schedule.state != "ENABLED" or not is_state_machine(arn):
                    continue
                zone = schedule.schedule_expression_timezone or "UTC"

                def fire(at: dt.datetime, schedule: Any = schedule) -> None:
                    start_execution(schedule.target["Arn"], schedule.target.get("Input"),
                                    f"schedule {schedule.name} at {at.isoformat()}")

                yield Timer(("schedule", schedule.arn, schedule.schedule_expression, zone), schedule.arn,
                            schedule.schedule_expression, zone, fire,
                            _moment(schedule.start_date), _moment(schedule.end_date))


def timers() -> list[Timer]:
    """Every schedule the clock evaluates now (rules first, then Scheduler schedules)."""
    from mfc.sandbox.moto_shims import moto_delivery

    return [*_rule_timers(moto_delivery), *_scheduler_timers()]


def tick(at: dt.datetime | None = None) -> int:
    """Fire every fire time that passed since the last tick; the number of fire times fired."""
    fired_count = 0
    with _lock:
        at = at or now()
        seen = set()
        for timer in timers():
            seen.add(timer.key)
            try:
                if timer.key not in _due:  # new (or re-enabled, or changed): first fire is the next one
                    # Whole seconds: a rate's fire times are then shown (and fire) on the second.
                    _due[timer.key] = next_after(timer.expression, timer.timezone, at.replace(microsecond=0))
                    continue
                fired, _due[timer.key] = advance_due(_due[timer.key], at, functools.partial(
                    _next_of, timer.expression, timer.timezone))
            except Exception as exc:  # noqa: BLE001 - a bad expression stops its schedule only
                if timer.key not in _reported:
                    _reported.add(timer.key)
                    _log(f"{timer.arn}: {timer.expression!r} cannot be evaluated: {exc}")
                _due[timer.key] = None
                continue
            fired = [t for t in fired if timer.active(t)]
            for fire_time in fired:
                timer.fire(fire_time)
            fired_count += len(fired)
        for key in set(_due) - seen:  # deleted or disabled: forget it
            del _due[key]
    return fired_count


def next_fires() -> dict[str, str | None]:
    """Each evaluated schedule's ARN and its next fire time (ISO 8601, UTC) as the clock knows it."""
    with _lock:
        return {key[1]: (due.isoformat() if due else None) for key, due in _due.items()}


def describe() -> dict[str, Any]:
    """The clock's state, for ``GET /moto-api/config`` (key ``mfc``)."""
    return {"clock_offset": _offset, "now": now().isoformat(), "next_fires": next_fires()}


def configure(settings: dict[str, Any]) -> None:
    """Move the clock: ``{"advance": seconds}`` adds to the offset, ``{"clock_offset": seconds}`` sets
    it. Schedules are evaluated just before the move (so one created an instant ago counts as
    existing) and just after it (so the fire times passed are started before this returns)."""
    global _offset
    advance, absolute = settings.get("advance"), settings.get("clock_offset")
    for value in (advance, absolute):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"mfc clock settings take numbers of seconds, not {value!r}")
    with _lock:
        tick()
        if absolute is not None:
            _offset = float(absolute)
        if advance is not None:
            _offset += float(advance)
        tick()


def _run(interval: float) -> None:
    while True:
        time.sleep(interval)
        try:
            tick()
        except Exception as exc:  # noqa: BLE001 - the clock keeps running
            _log(f"tick failed: {type(exc).__name__}: {exc}")


def start(interval: float = TICK_SECONDS) -> None:
    """Start the clock's daemon thread (once per process)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, args=(interval,), name="mfc-eventclock", daemon=True)
            _thread.start()
