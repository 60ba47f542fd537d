"""Deploying a flow's ``@trigger`` and ``@trigger_on_finish``: thin functions over boto3's
EventBridge client.

Each event becomes a rule on the bus ``mfc`` matching ``{"source": ["mfc"], "detail-type":
[NAME]}``, whose target starts the state machine with an input transformer that takes the mapped
parameters from the event's ``detail``; each upstream flow becomes a rule on the ``default`` bus
matching its state machine's SUCCEEDED executions, whose target passes the parameters' defaults.
The rules are tagged as mfc's, so a later deployment removes those whose trigger is gone and
never touches a rule someone else made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mfc.events.deploy import events_role
from mfc.events.names import EVENT_BUS, rule_name
from mfc.events.triggers import EventTrigger, FinishTrigger, Trigger
from mfc.exceptions import MfcError, warn

DEFAULT_BUS = "default"
TARGET_ID = "mfc-state-machine"
TAG_KIND = "mfc:trigger"
TAG_MACHINE = "mfc:state-machine"


@dataclass(frozen=True)
class RuleSpec:
    """One rule as it is put: its name, bus, pattern and single target, and what it is for."""

    name: str
    bus: str
    kind: str
    pattern: dict[str, Any]
    target: dict[str, Any]
    what: str


def sibling_arn(state_machine_arn: str, name: str) -> str:
    """The ARN a state machine called ``name`` has in the same account and region."""
    head, sep, _ = state_machine_arn.rpartition(":stateMachine:")
    if not sep:
        raise MfcError(f"{state_machine_arn!r} is not a state machine ARN")
    return f"{head}:stateMachine:{name}"


def input_template(defaults: dict[str, str], mapped: dict[str, str], event: str = "") -> str:
    """The InputTemplate ``{"parameters": {...}, "trigger": {...}}``: each mapped parameter the
    placeholder ``<name>`` (filled with the payload field's JSON value), every other its default;
    the trigger names the event."""
    parts = [f"{json.dumps(name)}: <{name}>" if name in mapped else f"{json.dumps(name)}: {json.dumps(defaults[name])}"
             for name in sorted(set(defaults) | set(mapped))]
    trigger = json.dumps({"kind": "event", "name": event})
    return '{"parameters": {' + ", ".join(parts) + '}, "trigger": ' + trigger + "}"


def rule_specs(triggers: list[Trigger], state_machine_arn: str, state_machine_name: str,
               defaults: dict[str, str], role: str) -> list[RuleSpec]:
    """The rules of ``triggers`` (pure: no AWS call)."""
    specs = []
    for trigger in triggers:
        target: dict[str, Any] = {"Id": TARGET_ID, "Arn": state_machine_arn, "RoleArn": role}
        if isinstance(trigger, EventTrigger):
            target["InputTransformer"] = {
                "InputPathsMap": {name: f"$.detail.{path}" for name, path in sorted(trigger.parameters.items())},
                "InputTemplate": input_template(defaults, trigger.parameters, trigger.event),
            }
            specs.append(RuleSpec(rule_name(state_machine_name, "event", trigger.event), EVENT_BUS, "event",
                                  {"source": ["mfc"], "detail-type": [trigger.event]}, target,
                                  f"event {trigger.event!r}"))
        else:
            upstream = sibling_arn(state_machine_arn, trigger.state_machine_name)
            target["Input"] = json.dumps({"parameters": dict(sorted(defaults.items())),
                                          "trigger": {"kind": "upstream", "name": trigger.flow}})
            specs.append(RuleSpec(rule_name(state_machine_name, "finish", trigger.flow), DEFAULT_BUS, "finish",
                                  {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                                   "detail": {"status": ["SUCCEEDED"], "stateMachineArn": [upstream]}},
                                  target, f"a succeeded run of {trigger.state_machine_name}"))
    return specs


def events_client(config: Any) -> Any:
    from mfc.runner.batch_setup import quick_client

    return quick_client("events", config)


def ensure_bus(events: Any, name: str = EVENT_BUS) -> bool:
    """Create the event bus ``name`` when it is missing; True when it was created."""
    try:
        events.describe_event_bus(Name=name)
        return False
    except events.exceptions.ResourceNotFoundException:
        events.create_event_bus(Name=name)
        return True


def apply_triggers(config: Any, state_machine_arn: str, state_machine_name: str, triggers: list[Trigger],
                   defaults: dict[str, str]) -> list[str]:
    """Create or update one rule per trigger, remove mfc's trigger rules of this state machine
    that have no trigger any more; returns a line per change (``+`` created, ``~`` updated, ``-``
    removed; an unchanged rule is left alone). An upstream that is not deployed
    gets its rule all the same (it fires once the upstream is deployed) and a warning."""
    from mfc.runner.batch_setup import access_error

    specs = rule_specs(triggers, state_machine_arn, state_machine_name, defaults,
                       events_role(config) if triggers else "")
    events = events_client(config)
    lines: list[str] = []
    try:
        if any(s.bus == EVENT_BUS for s in specs) and ensure_bus(events):
            lines.append(f"+ event bus {EVENT_BUS}")
        for trigger in triggers:
            if isinstance(trigger, FinishTrigger):
                _warn_if_not_deployed(config, trigger, sibling_arn(state_machine_arn, trigger.state_machine_name))
        for spec in specs:
            current = _current(events, spec)
            if current == "same":
                continue
            events.put_rule(Name=spec.name, EventBusName=spec.bus, EventPattern=json.dumps(spec.pattern), State="ENABLED",
                            Description=f"mfc: start {state_machine_name} on {spec.what}"[:512],
                            Tags=[{"Key": TAG_KIND, "Value": spec.kind}, {"Key": TAG_MACHINE, "Value": state_machine_name}])
            events.put_targets(Rule=spec.name, EventBusName=spec.bus, Targets=[spec.target])
            mark = "+" if current == "missing" else "~"
            lines.append(f"{mark} rule {spec.name} (bus {spec.bus}): starts {state_machine_name} on {spec.what}")
        keep = {(s.bus, s.name) for s in specs}
        for bus, name in _trigger_rules(events, state_machine_arn, state_machine_name):
            if (bus, name) not in keep:
                _delete_rule(events, bus, name)
                lines.append(f"- rule {name} (bus {bus}): its trigger is gone")
    except MfcError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line
        raise access_error(exc, config, "Amazon EventBridge") from None
    return lines


def delete_triggers(config: Any, state_machine_arn: str, state_machine_name: str) -> list[str]:
    """Remove every trigger rule mfc made for this state machine; returns the names removed."""
    from mfc.runner.batch_setup import access_error

    events = events_client(config)
    removed = []
    try:
        for bus, name in _trigger_rules(events, state_machine_arn, state_machine_name):
            _delete_rule(events, bus, name)
            removed.append(name)
    except Exception as exc:  # noqa: BLE001
        raise access_error(exc, config, "Amazon EventBridge") from None
    return removed


def _current(events: Any, spec: RuleSpec) -> str:
    """``missing``, ``same`` (pattern, state and only target as ``spec`` has them) or ``changed``."""
    try:
        rule = events.describe_rule(Name=spec.name, EventBusName=spec.bus)
    except events.exceptions.ResourceNotFoundException:
        return "missing"
    targets = events.list_targets_by_rule(Rule=spec.name, EventBusName=spec.bus).get("Targets") or []
    same = (json.loads(rule.get("EventPattern") or "null") == spec.pattern and rule.get("State") == "ENABLED"
            and len(targets) == 1 and {k: targets[0].get(k) for k in spec.target} == spec.target)
    return "same" if same else "changed"


def _warn_if_not_deployed(config: Any, trigger: FinishTrigger, arn: str) -> None:
    from mfc.sfn.deploy import sfn_client

    sfn = sfn_client(config)
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        warn(f"{trigger.where}@trigger_on_finish: {trigger.flow} is not deployed (no state machine "
             f"{trigger.state_machine_name}); its rule waits for it: deploy it with mfc sfn create")


def _trigger_rules(events: Any, state_machine_arn: str, state_machine_name: str) -> list[tuple[str, str]]:
    """(bus, name) of the rules targeting the state machine that mfc tagged as its triggers."""
    found = []
    for bus in (EVENT_BUS, DEFAULT_BUS):
        names: list[str] = []
        token: str | None = None
        try:
            while True:
                page = events.list_rule_names_by_target(TargetArn=state_machine_arn, EventBusName=bus,
                                                        **({"NextToken": token} if token else {}))
                names += page.get("RuleNames") or []
                token = page.get("NextToken")
                if not token:
                    break
        except events.exceptions.ResourceNotFoundException:
            continue  # no bus mfc: no event rules
        for name in names:
            arn = events.describe_rule(Name=name, EventBusName=bus)["Arn"]
            tags = {t["Key"]: t["Value"] for t in events.list_tags_for_resource(ResourceARN=arn).get("Tags") or []}
            if tags.get(TAG_KIND) in ("event", "finish") and tags.get(TAG_MACHINE) == state_machine_name:
                found.append((bus, name))
    return found


def _delete_rule(events: Any, bus: str, name: str) -> None:
    ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name, EventBusName=bus).get("Targets") or []]
    if ids:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=ids)
    events.delete_rule(Name=name, EventBusName=bus)


def plan_triggers(flow_cls: type, config: Any) -> tuple[list[Trigger], dict[str, str]]:
    """The flow's triggers and the parameters' defaults, checked before anything is deployed
    (mappings, required parameters, the events role when there are triggers)."""
    from mfc.events.inputs import parameter_defaults
    from mfc.events.triggers import flow_triggers

    user = str(config["user"] or "")
    triggers = flow_triggers(flow_cls, user)
    if triggers:
        events_role(config)
    return triggers, parameter_defaults(flow_cls, user)


def trigger_lines(triggers: list[Trigger], state_machine_name: str) -> list[str]:
    """What :func:`apply_triggers` would put, a line a rule (for ``--dry-run``)."""
    return [f"rule {rule_name(state_machine_name, 'event', t.event)} (bus {EVENT_BUS}): on event {t.event!r}"
            if isinstance(t, EventTrigger) else
            f"rule {rule_name(state_machine_name, 'finish', t.flow)} (bus {DEFAULT_BUS}): on a succeeded run of "
            f"{t.state_machine_name}" for t in triggers]
