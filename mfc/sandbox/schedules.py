"""The schedules in the sandbox, for ``mfc sandbox status``: every EventBridge rule with a
``ScheduleExpression`` (on every bus) and every EventBridge Scheduler schedule, read with boto3,
with their next fire times on the sandbox's clock (which tests may have moved ahead)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from mfc.sandbox import moto_server
from mfc.sandbox.resources import client

SHOWN_FIRES = 3


def _rules(events: Any) -> Iterator[dict[str, Any]]:
    for bus in events.list_event_buses().get("EventBuses", []):
        kwargs: dict[str, Any] = {"EventBusName": bus["Name"]}
        while True:
            page = events.list_rules(**kwargs)
            for rule in page.get("Rules", []):
                if rule.get("ScheduleExpression"):
                    targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus["Name"])["Targets"]
                    yield {"kind": "rule", "name": rule["Name"], "group": bus["Name"], "arn": rule.get("Arn"),
                           "expression": rule["ScheduleExpression"], "timezone": None,
                           "state": rule.get("State"), "targets": [t["Arn"] for t in targets]}
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]


def _scheduler(scheduler: Any) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {}
    while True:
        page = scheduler.list_schedules(**kwargs)
        for item in page.get("Schedules", []):
            full = scheduler.get_schedule(Name=item["Name"], GroupName=item.get("GroupName") or "default")
            yield {"kind": "scheduler", "name": full["Name"], "group": full.get("GroupName") or "default",
                   "arn": full.get("Arn"), "expression": full["ScheduleExpression"],
                   "timezone": full.get("ScheduleExpressionTimezone") or "UTC", "state": full.get("State"),
                   "targets": [full["Target"]["Arn"]] if full.get("Target") else []}
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]


def fire_times(expression: str, timezone: str | None, now: dt.datetime, known: str | None,
               count: int = SHOWN_FIRES) -> list[str]:
    """The next ``count`` fire times (ISO 8601, UTC): from ``known`` (the clock's next fire time,
    which anchors a rate) when given, else from ``now``."""
    from mfc.events.expressions import parse_schedule

    schedule = parse_schedule(expression)
    if known:
        first = dt.datetime.fromisoformat(known)
        fires = [first, *schedule.next_fires(first, count - 1, timezone)]
    else:
        fires = schedule.next_fires(now, count, timezone)
    return [f.isoformat() for f in fires[:count]]


def list_schedules(port: int) -> dict[str, Any]:
    """``{"clock": {clock_offset, now}, "schedules": [{kind, name, group, arn, expression, timezone,
    state, targets, next_fires}]}``; a schedule the expressions module refuses has ``error`` instead."""
    clock = moto_server.clock(port)
    now = dt.datetime.fromisoformat(clock["now"])
    known = clock.get("next_fires") or {}
    found = [*_rules(client("events", port)), *_scheduler(client("scheduler", port))]
    for item in found:
        item["next_fires"] = []
        if item["state"] != "ENABLED":
            continue
        try:
            item["next_fires"] = fire_times(item["expression"], item["timezone"], now, known.get(item["arn"]))
        except Exception as exc:  # noqa: BLE001 - status reports what it cannot evaluate
            item["error"] = str(exc)
    return {"clock": {"clock_offset": clock.get("clock_offset"), "now": clock["now"]}, "schedules": found}
