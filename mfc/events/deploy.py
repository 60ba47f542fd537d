"""A deployed flow's schedule on AWS: thin functions over boto3.

Without a timezone the schedule is an EventBridge rule (rules are UTC only) with one target, the
state machine; with a timezone it is an EventBridge Scheduler schedule (group ``default``). Both
are named :func:`mfc.events.names.rule_name` (state machine, ``"schedule"``), start the state
machine as the role ``events_role`` with the given input, and applying one kind removes a
leftover of the other. Every function is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mfc.events.names import rule_name
from mfc.exceptions import MfcError

TARGET_ID = "state-machine"
GROUP = "default"
ROLE_HINT = ("set events_role (MFC_EVENTS_ROLE) to the ARN of a role EventBridge can assume to start the "
             "state machine; `mfc sandbox up` sets one")


@dataclass(frozen=True)
class DeployedSchedule:
    """What is deployed: ``kind`` is ``rule`` (EventBridge) or ``schedule`` (EventBridge Scheduler)."""

    kind: str
    name: str
    expression: str
    timezone: str | None
    enabled: bool
    target_arn: str
    role_arn: str
    input: str


def _client(service: str, config: Any) -> Any:
    from mfc.aws import client

    return client(service, config)


@contextmanager
def _calling(config: Any, what: str) -> Iterator[None]:
    """Turn a failed AWS call into one MfcError line."""
    from mfc.runner.batch_setup import access_error

    try:
        yield
    except MfcError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line
        raise access_error(exc, config, what) from None


def events_role(config: Any) -> str:
    """The role EventBridge starts state machines as (``events_role``); MfcError when unset."""
    from mfc.sfn.deploy import configured_role

    return configured_role(config, "events_role", "EventBridge to start the state machine as", ROLE_HINT)


def flow_schedule(flow_cls: type) -> tuple[str, str | None] | None:
    """The flow's ``@schedule`` as (canonical expression, timezone); None without one (or when
    it sets none). ScheduleError (naming the decorator's line) for a bad cron or timezone."""
    from mfc.events.expressions import schedule_from_decorator

    decorator = (getattr(flow_cls, "_flow_decorators", None) or {}).get("schedule")
    if decorator is None:
        return None
    expression, zone = schedule_from_decorator(decorator.attributes, decorator.where)
    return (expression, zone) if expression is not None else None


def apply_flow_schedule(config: Any, flow_cls: type, graph: Any, state_machine_arn: str,
                        state_machine_name: str) -> DeployedSchedule | None:
    """Apply the flow's ``@schedule`` (``mfc sfn create``), its input the parameters' defaults;
    None (and nothing changed) when the flow has none."""
    from mfc.events.inputs import default_parameters, execution_input

    wanted = flow_schedule(flow_cls)
    if wanted is None:
        return None
    parameters = default_parameters(flow_cls, str(config["user"] or ""), graph)
    return apply_schedule(config, state_machine_arn, state_machine_name, wanted[0], wanted[1],
                          execution_input(parameters, {"kind": "schedule", "name": wanted[0]}))


def apply_schedule(config: Any, state_machine_arn: str, state_machine_name: str, expression: str,
                   timezone: str | None, input_json: str) -> DeployedSchedule:
    """Create or update the flow's schedule (see the module docstring); returns what is deployed."""
    role = events_role(config)
    name = rule_name(state_machine_name, "schedule")
    if timezone is None:
        events = _client("events", config)
        with _calling(config, "Amazon EventBridge"):
            events.put_rule(Name=name, ScheduleExpression=expression, State="ENABLED",
                            Description=f"mfc: runs {state_machine_name} on {expression}")
            answer = events.put_targets(Rule=name, Targets=[{"Id": TARGET_ID, "Arn": state_machine_arn,
                                                             "RoleArn": role, "Input": input_json}])
        failed = answer.get("FailedEntries") or []
        if answer.get("FailedEntryCount") or failed:
            why = "; ".join(f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}" for e in failed) or "no reason given"
            raise MfcError(f"Amazon EventBridge did not set the target of rule {name}: {why}")
        _delete_scheduler_schedule(config, name)
    else:
        scheduler = _client("scheduler", config)
        body = {"Name": name, "GroupName": GROUP, "ScheduleExpression": expression,
                "ScheduleExpressionTimezone": timezone, "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED",
                "Description": f"mfc: runs {state_machine_name} on {expression} ({timezone})",
                "Target": {"Arn": state_machine_arn, "RoleArn": role, "Input": input_json}}
        with _calling(config, "Amazon EventBridge Scheduler"):
            if _get_scheduler_schedule(scheduler, name) is None:
                scheduler.create_schedule(**body)
            else:
                scheduler.update_schedule(**body)
        _delete_rule(config, name)
    found = show_schedule(config, state_machine_name)
    assert found is not None
    return found


def _get_scheduler_schedule(scheduler: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(scheduler.get_schedule(Name=name, GroupName=GROUP))
    except scheduler.exceptions.ResourceNotFoundException:
        return None


def _get_rule(events: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(events.describe_rule(Name=name))
    except events.exceptions.ResourceNotFoundException:
        return None


def show_schedule(config: Any, state_machine_name: str) -> DeployedSchedule | None:
    """The flow's deployed schedule (rule or Scheduler schedule), None when it has none."""
    name = rule_name(state_machine_name, "schedule")
    events = _client("events", config)
    with _calling(config, "Amazon EventBridge"):
        rule = _get_rule(events, name)
        targets = (events.list_targets_by_rule(Rule=name).get("Targets") or []) if rule else []
    if rule is not None:
        target = next((t for t in targets if t.get("Id") == TARGET_ID), targets[0] if targets else {})
        return DeployedSchedule("rule", name, str(rule.get("ScheduleExpression") or ""), None,
                                rule.get("State") == "ENABLED", str(target.get("Arn") or ""),
                                str(target.get("RoleArn") or ""), str(target.get("Input") or ""))
    scheduler = _client("scheduler", config)
    with _calling(config, "Amazon EventBridge Scheduler"):
        found = _get_scheduler_schedule(scheduler, name)
    if found is None:
        return None
    target = found.get("Target") or {}
    return DeployedSchedule("schedule", name, str(found.get("ScheduleExpression") or ""),
                            found.get("ScheduleExpressionTimezone") or None, found.get("State") == "ENABLED",
                            str(target.get("Arn") or ""), str(target.get("RoleArn") or ""),
                            str(target.get("Input") or ""))


def set_state(config: Any, state_machine_name: str, enabled: bool) -> DeployedSchedule | None:
    """Enable or disable the flow's schedule; None when it has none."""
    found = show_schedule(config, state_machine_name)
    if found is None:
        return None
    if found.kind == "rule":
        events = _client("events", config)
        with _calling(config, "Amazon EventBridge"):
            (events.enable_rule if enabled else events.disable_rule)(Name=found.name)
    else:
        scheduler = _client("scheduler", config)
        with _calling(config, "Amazon EventBridge Scheduler"):
            current = _get_scheduler_schedule(scheduler, found.name) or {}
            keep = {k: current[k] for k in ("ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow",
                                            "Target", "Description", "StartDate", "EndDate") if current.get(k)}
            scheduler.update_schedule(Name=found.name, GroupName=GROUP, State="ENABLED" if enabled else "DISABLED",
                                      **keep)
    return show_schedule(config, state_machine_name)


def delete_schedule(config: Any, state_machine_name: str) -> list[str]:
    """Delete the flow's schedule, whichever kind; returns what was deleted (``rule NAME``,
    ``schedule NAME``), empty when there was nothing."""
    name = rule_name(state_machine_name, "schedule")
    deleted = []
    if _delete_rule(config, name):
        deleted.append(f"rule {name}")
    if _delete_scheduler_schedule(config, name):
        deleted.append(f"schedule {name}")
    return deleted


def _delete_rule(config: Any, name: str) -> bool:
    events = _client("events", config)
    with _calling(config, "Amazon EventBridge"):
        if _get_rule(events, name) is None:
            return False
        ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name).get("Targets") or []]
        if ids:
            events.remove_targets(Rule=name, Ids=ids)
        events.delete_rule(Name=name)
    return True


def _delete_scheduler_schedule(config: Any, name: str) -> bool:
    scheduler = _client("scheduler", config)
    with _calling(config, "Amazon EventBridge Scheduler"):
        try:
            scheduler.delete_schedule(Name=name, GroupName=GROUP)
        except scheduler.exceptions.ResourceNotFoundException:
            return False
    return True
