"""``@trigger`` and ``@trigger_on_finish`` as plain data.

The decorators' arguments are read with Metaflow's forms (see ``metaflow/plugins/
events_decorator.py``) when the flow is imported (:func:`parse_events`, :func:`parse_flows`, called
by the decorators: a bad form is an error naming the decorator's file:line); :func:`flow_triggers`
then checks them against the flow's Parameters, which only a deployment needs. Each event, and
each upstream flow, starts the flow on its own (one EventBridge rule each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from mfc.exceptions import MfcError

_FLOW_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_FIELD = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")  # a payload key; dots reach into nested objects


@dataclass(frozen=True)
class EventTrigger:
    """Start the flow when the event ``event`` is published; ``parameters`` maps parameter names
    to the fields of the event's payload they take their value from."""

    event: str
    parameters: dict[str, str] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class FinishTrigger:
    """Start the flow when a run of the upstream flow ``flow`` succeeds; ``project``/``branch``
    are the upstream's ``@project`` names (by default this flow's own, as in Metaflow)."""

    flow: str
    project: str | None = None
    branch: str | None = None
    where: str = ""

    @property
    def state_machine_name(self) -> str:
        """The upstream's state machine name, as ``mfc sfn create`` names it."""
        from mfc.sfn.settings import state_machine_name

        return state_machine_name(self.flow, self.project, self.branch)


Trigger = EventTrigger | FinishTrigger


def _is_text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _mapping(parameters: Any, event: str, where: str) -> dict[str, str]:
    """A ``parameters`` value (dict, or list of names and (name, field) pairs) as a dict."""
    bad = MfcError(f"{where}@trigger event {event!r}: parameters must be a dict of parameter names to payload "
                   "fields, or a list of names and (name, field) pairs, got " + repr(parameters)[:200])
    pairs: list[tuple[Any, Any]] = []
    if isinstance(parameters, dict):
        pairs = list(parameters.items())
    elif isinstance(parameters, (list, tuple)):
        for item in parameters:
            if isinstance(item, str):
                pairs.append((item, item))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise bad
    else:
        raise bad
    mapping: dict[str, str] = {}
    for name, payload_field in pairs:
        if not (_is_text(name) and _is_text(payload_field)):
            raise bad
        if not _FIELD.match(payload_field):
            raise MfcError(f"{where}@trigger event {event!r}: payload field {payload_field!r} (for parameter "
                           f"{name!r}) may hold only letters, digits and _ (dots reach into nested objects)")
        mapping[name] = payload_field
    return mapping


def _event(value: Any, where: str) -> EventTrigger:
    if isinstance(value, str):
        if not value.strip():
            raise MfcError(f"{where}@trigger: an event name cannot be empty")
        return EventTrigger(value, {}, where)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"name", "parameters"}, key=str)
        if unknown:
            raise MfcError(f"{where}@trigger: an event dict takes the keys name and parameters, not {unknown[0]!r}")
        name = value.get("name")
        if not (_is_text(name) and name.strip()):
            raise MfcError(f"{where}@trigger: the event dict {value!r} needs a 'name' (a non-empty string)")
        return EventTrigger(name, _mapping(value.get("parameters") or {}, name, where), where)
    if callable(value):
        raise MfcError(f"{where}@trigger: an event given by a function (Metaflow's deploy-time events) is not "
                       "supported; write the event's name")
    raise MfcError(f"{where}@trigger: an event is a name or a dict like {{'name': 'foo', 'parameters': "
                   f"{{'alpha': 'field'}}}}, got {value!r}")


def parse_events(attributes: dict[str, Any], where: str = "") -> list[EventTrigger]:
    """The events of ``@trigger(event=...)`` or ``@trigger(events=[...])``."""
    event, events = attributes.get("event"), attributes.get("events")
    if event and events:
        raise MfcError(f"{where}@trigger takes event or events, not both")
    if event:
        found = [_event(event, where)]
    elif events:
        if not isinstance(events, (list, tuple)):
            raise MfcError(f"{where}@trigger(events=...) must be a list of event names or dicts, got {events!r}")
        found = [_event(item, where) for item in events]
    else:
        raise MfcError(f"{where}@trigger names no event: write @trigger(event='name') or @trigger(events=[...])")
    names = [t.event for t in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MfcError(f"{where}@trigger names the event {twice[0]!r} twice")
    return found


def _upstream(value: Any, where: str) -> FinishTrigger:
    project = branch = None
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"name", "project", "project_branch"}, key=str)
        if unknown:
            raise MfcError(f"{where}@trigger_on_finish: a flow dict takes the keys name, project and "
                           f"project_branch, not {unknown[0]!r}")
        name = value.get("name")
        if not _is_text(name) or "." in name:
            raise MfcError(f"{where}@trigger_on_finish: the flow dict {value!r} needs a 'name', a flow name "
                           "without dots")
        for key in ("project", "project_branch"):
            if key in value and not _is_text(value[key]):
                raise MfcError(f"{where}@trigger_on_finish: the {key} of flow {name!r} must be a non-empty string")
        flow, project, branch = name, value.get("project"), value.get("project_branch")
    elif isinstance(value, str):
        dots = value.count(".")
        if dots == 1:
            raise MfcError(f"{where}@trigger_on_finish: {value!r} is neither a flow name nor a fully qualified "
                           "name project.branch.Flow")
        flow = value
        if dots >= 2:
            project, tail = value.split(".", 1)
            branch, flow = tail.rsplit(".", 1)
    elif callable(value):
        raise MfcError(f"{where}@trigger_on_finish: a flow given by a function (Metaflow's deploy-time flows) is "
                       "not supported; write the flow's name")
    else:
        raise MfcError(f"{where}@trigger_on_finish: a flow is a name or a dict like {{'name': 'Up', 'project': "
                       f"'p', 'project_branch': 'prod'}}, got {value!r}")
    if not _FLOW_NAME.match(flow):
        raise MfcError(f"{where}@trigger_on_finish: {flow!r} is not a flow name (letters, digits and _ only)")
    return FinishTrigger(flow, project, branch, where)


def parse_flows(attributes: dict[str, Any], where: str = "") -> list[FinishTrigger]:
    """The upstream flows of ``@trigger_on_finish(flow=...)`` or ``(flows=[...])``."""
    flow, flows = attributes.get("flow"), attributes.get("flows")
    if flow and flows:
        raise MfcError(f"{where}@trigger_on_finish takes flow or flows, not both")
    if flow:
        found = [_upstream(flow, where)]
    elif flows:
        if not isinstance(flows, (list, tuple)):
            raise MfcError(f"{where}@trigger_on_finish(flows=...) must be a list of flow names, got {flows!r}")
        found = [_upstream(item, where) for item in flows]
    else:
        raise MfcError(f"{where}@trigger_on_finish names no flow: write @trigger_on_finish(flow='Upstream') or "
                       "(flows=[...])")
    keys = [(t.flow, t.project, t.branch) for t in found]
    twice = sorted({k[0] for k in keys if keys.count(k) > 1})
    if twice:
        raise MfcError(f"{where}@trigger_on_finish names the flow {twice[0]!r} twice")
    return found


def flow_triggers(flow_cls: type, user: str = "") -> list[Trigger]:
    """The flow's triggers, checked against its Parameters: a mapping names a parameter the flow
    has (its name, or the attribute holding it); a required parameter without a default is given
    by every event's mapping, and none is needed when an upstream starts the flow (its runs carry
    only defaults). An upstream without its own ``@project`` names takes this flow's (``user`` names
    the ``user.<name>`` branch)."""
    from mfc.decorators import project_info
    from mfc.parameters import flow_parameters

    decorators = getattr(flow_cls, "_flow_decorators", {})
    events: list[EventTrigger] = list(getattr(decorators.get("trigger"), "triggers", []))
    upstreams: list[FinishTrigger] = list(getattr(decorators.get("trigger_on_finish"), "triggers", []))
    params = flow_parameters(flow_cls)
    names = {p.name: p.name for p in params.values()} | {attr: p.name for attr, p in params.items()}
    needed = [p.name for p in params.values() if p.required and p.default is None]
    known = ", ".join(sorted(p.name for p in params.values())) or "none"
    found: list[Trigger] = []
    for trigger in events:
        mapping: dict[str, str] = {}
        for name, payload_field in trigger.parameters.items():
            if name not in names:
                raise MfcError(f"{trigger.where}@trigger event {trigger.event!r} maps {name!r}, which is not a "
                               f"parameter of {flow_cls.__name__} (its parameters: {known})")
            mapping[names[name]] = payload_field
        for name in needed:
            if name not in mapping:
                raise MfcError(f"{trigger.where}parameter {name!r} is required and has no default, but @trigger "
                               f"event {trigger.event!r} does not map it from its payload",
                               hint=f"map it: @trigger(event={{'name': {trigger.event!r}, 'parameters': "
                                    f"{{{name!r}: 'field'}}}}), or give {name} a default")
        found.append(EventTrigger(trigger.event, mapping, trigger.where))
    own = project_info(flow_cls, user) or {}
    for upstream in upstreams:
        if needed:
            raise MfcError(f"{upstream.where}parameter {needed[0]!r} is required and has no default, but "
                           f"{flow_cls.__name__} has @trigger_on_finish: a run started by {upstream.flow} "
                           "finishing has no one to give it", hint=f"give {needed[0]} a default")
        project = upstream.project or own.get("project_name")
        branch = upstream.branch or own.get("branch_name")
        if bool(project) != bool(branch):
            raise MfcError(f"{upstream.where}@trigger_on_finish flow {upstream.flow!r}: give both its project and "
                           "its project_branch (or neither)")
        found.append(FinishTrigger(upstream.flow, project, branch, upstream.where))
    return found
