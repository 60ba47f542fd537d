"""Deployments recorded in the metadata service (``metadata = "service"``): what ``mfc sfn
create``, ``mfc schedule`` and ``mfc sfn delete`` deploy is shown by the service's UI, with the
schedule's next fire times and a button to trigger it. Nothing is recorded on the local provider
(Step Functions itself is the list of deployments there)."""

from __future__ import annotations

from typing import Any

from mfc.exceptions import warn


def _client(config: Any) -> Any:
    if config["metadata"] != "service":
        return None
    from mfc.stores.service_metadata import client_from_config

    return client_from_config(config)


def _path(name: str) -> str:
    from mfc.stores.service_client import quoted

    return "/api/v1/deployments/" + quoted(name)


def record_deployment(config: Any, flow: str, name: str, arn: str, triggers: list[Any],
                      parameters: dict[str, str], schedule: Any = None, info: dict[str, Any] | None = None) -> None:
    """Record (or update) the deployment of ``flow`` as state machine ``name``. ``schedule``: the
    DeployedSchedule, if the flow has one. A service that cannot take it is a warning: the
    deployment itself has succeeded."""
    from mfc.stores.service_client import ServiceError

    client = _client(config)
    if client is None:
        return
    body = {"flow": flow, "state_machine_arn": arn, "region": str(config["aws_region"] or ""),
            "schedule": _schedule(schedule), "triggers": [_trigger(t) for t in triggers],
            "parameters": parameters, "info": info or {}}
    try:
        client.put(_path(name), body)
    except ServiceError as exc:
        warn(f"{exc}; the deployment of {name} is not shown by the metadata service")


def record_schedule(config: Any, name: str, schedule: Any) -> None:
    """Update the schedule of a recorded deployment (``mfc schedule``); None: it has none now."""
    from mfc.stores.service_client import ServiceError

    client = _client(config)
    if client is None:
        return
    try:
        found = client.get(_path(name))
        client.put(_path(name), {**{k: found.get(k) for k in ("flow", "state_machine_arn", "region", "triggers",
                                                               "parameters", "info")},
                                 "schedule": _schedule(schedule)})
    except ServiceError as exc:
        if exc.status != 404:  # a flow deployed before the service knew of it: nothing to update
            warn(f"{exc}; the schedule of {name} is not shown by the metadata service")


def forget_deployment(config: Any, name: str) -> None:
    """Remove a deleted deployment from the service."""
    from mfc.stores.service_client import ServiceError

    client = _client(config)
    if client is None:
        return
    try:
        client.delete(_path(name))
    except ServiceError as exc:
        warn(f"{exc}; the metadata service still lists {name}")


def _schedule(schedule: Any) -> dict[str, Any] | None:
    if schedule is None:
        return None
    return {"expression": schedule.expression, "timezone": schedule.timezone,
            "kind": schedule.kind, "enabled": schedule.enabled, "name": schedule.name}


def _trigger(trigger: Any) -> dict[str, Any]:
    from mfc.events.triggers import EventTrigger

    if isinstance(trigger, EventTrigger):
        return {"kind": "event", "name": trigger.event}
    return {"kind": "upstream", "name": trigger.flow, "project": trigger.project}
