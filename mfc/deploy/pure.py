"""The parts of deploying that call no AWS API: ``--parameters`` parsing, the parameters a create or
update sends, stack outputs as mfc settings, stack events as lines, and what a failed deployment
says."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from mfc.config import SETTINGS
from mfc.exceptions import MfcError

DEFAULT_STACK = "mfc"
STACK_TAG = "mfc:stack"  # put on every stack `mfc deploy aws` creates
DESCRIPTION_MARKER = "mfc:"  # the template's Description starts with it
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_PARAMETER_KEY = re.compile(r"[A-Za-z0-9]+")
FAILED = re.compile(r"_FAILED$")
TERMINAL = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
            "CREATE_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED",
            "UPDATE_FAILED", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
READY = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}  # a stack to use
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}


def check_stack_name(name: str) -> str:
    """``name`` when CloudFormation accepts it as a stack name; one clear line otherwise."""
    if not _STACK_NAME.fullmatch(name or ""):
        raise MfcError(f"stack name {name!r} is not valid",
                       hint="start with a letter; letters, digits and - only; at most 128 characters")
    return name


def parse_parameters(pairs: Sequence[str], known: Iterable[str] | None = None) -> dict[str, str]:
    """``["Key=Value", ...]`` (``--parameters``) as a dict; a key given twice, a pair without
    ``=`` or a key the template does not declare (``known``) is one clear line."""
    known_keys = sorted(known) if known is not None else None
    found: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not _PARAMETER_KEY.fullmatch(key):
            raise MfcError(f"--parameters {pair!r}: expected KEY=VALUE (e.g. CpuMaxVcpus=64)")
        if key in found:
            raise MfcError(f"--parameters: {key} is given twice")
        if known_keys is not None and key not in known_keys:
            raise MfcError(f"--parameters: the template has no parameter {key}", hint=f"it has {', '.join(known_keys)}")
        found[key] = value
    return found


def stack_parameters(declared: Sequence[Mapping[str, Any]], given: Mapping[str, str],
                     updating: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ``Parameters`` of a create or update: those ``given``; on an update (``updating``: the
    keys the stack has now) every other one keeps its previous value; on a create every list
    parameter is sent with its default (``declared``: GetTemplateSummary's ``Parameters``).

    Sending list defaults costs nothing on AWS and is needed by moto, whose CloudFormation splits a
    CommaDelimitedList given as a value but not its default."""
    result: list[dict[str, Any]] = []
    for parameter in declared:
        key = str(parameter["ParameterKey"])
        if key in given:
            result.append({"ParameterKey": key, "ParameterValue": given[key]})
        elif key in updating:
            result.append({"ParameterKey": key, "UsePreviousValue": True})
        elif "List" in str(parameter.get("ParameterType", "")) and "DefaultValue" in parameter:
            result.append({"ParameterKey": key, "ParameterValue": str(parameter["DefaultValue"])})
    return result


def parameters_unchanged(current: Sequence[Mapping[str, Any]], given: Mapping[str, str]) -> bool:
    """Whether a stack's ``current`` Parameters (DescribeStacks) already have every ``given`` value."""
    values = {str(p.get("ParameterKey")): _listed(str(p.get("ParameterValue", ""))) for p in current}
    return all(key in values and values[key] == value for key, value in given.items())


def _listed(value: str) -> str:
    """A list parameter's value as given (``a,b``): moto reports one as Python's repr (``['a', 'b']``)."""
    if value.startswith("[") and value.endswith("]"):
        import ast

        try:
            items = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        if isinstance(items, list):
            return ",".join(str(item) for item in items)
    return value


def setting_for_output(key: str) -> str | None:
    """The mfc setting a stack output fills (``BatchGpuQueue`` -> ``batch_gpu_queue``), None when the
    output fills none (output names are alphanumeric, so they are the settings in CamelCase)."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
    return snake if snake in SETTINGS else None


def output_for_setting(setting: str) -> str:
    """The output name of a setting (``batch_gpu_queue`` -> ``BatchGpuQueue``)."""
    return "".join(part.capitalize() for part in setting.split("_"))


def outputs_to_settings(outputs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The settings a stack's ``Outputs`` fill, by setting name (outputs that fill none are left
    out). ``service_token`` is still the secret's ARN here."""
    settings: dict[str, str] = {}
    for output in outputs:
        setting = setting_for_output(str(output.get("OutputKey", "")))
        if setting is not None:
            settings[setting] = str(output.get("OutputValue", ""))
    return settings


def is_mfc_stack(stack: Mapping[str, Any]) -> bool:
    """Whether a stack (DescribeStacks entry) is one mfc deployed: its tag or its description says so."""
    tags = {t.get("Key"): t.get("Value") for t in stack.get("Tags") or []}
    return STACK_TAG in tags or str(stack.get("Description") or "").startswith(DESCRIPTION_MARKER)


def format_event(event: Mapping[str, Any]) -> str:
    """One stack event as a line: time, resource (type), status, reason."""
    stamp = event.get("Timestamp")
    when = stamp.strftime("%H:%M:%S") if isinstance(stamp, datetime) else str(stamp or "")[11:19]
    kind = str(event.get("ResourceType") or "")
    resource = str(event.get("LogicalResourceId") or "")
    line = f"{when}  {resource} ({kind})  {event.get('ResourceStatus') or ''}"
    reason = " ".join(str(event.get("ResourceStatusReason") or "").split())
    return f"{line}  {reason}" if reason else line


def _cause(event: Mapping[str, Any]) -> bool:
    """Whether a failed event says why (CloudFormation also fails the resources it cancelled)."""
    reason = str(event.get("ResourceStatusReason") or "")
    return bool(FAILED.search(str(event.get("ResourceStatus") or ""))) and bool(reason) and \
        "cancelled" not in reason.lower() and event.get("ResourceType") != "AWS::CloudFormation::Stack"


def first_failure(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The earliest failed resource event with a reason (``events`` in any order), else None."""
    failed = [e for e in events if _cause(e)]
    return min(failed, key=lambda e: str(e.get("Timestamp") or "")) if failed else None


def failure_message(stack: str, status: str, events: Sequence[Mapping[str, Any]]) -> str:
    """What a deployment that ended in ``status`` says: the failed resource and its reason, and what
    was left behind."""
    cause = first_failure(events)
    what = (f"resource {cause.get('LogicalResourceId')} ({cause.get('ResourceType')}) failed: "
            f"{' '.join(str(cause.get('ResourceStatusReason')).split())}") if cause else "it failed"
    if status == "ROLLBACK_COMPLETE":
        left = ("it rolled back and nothing it created is left, but the empty stack stays: "
                f"`mfc deploy aws --stack {stack} --delete`, then deploy again")
    elif status == "UPDATE_ROLLBACK_COMPLETE":
        left = "it rolled back to the previous deployment, which still runs"
    elif status.endswith("_FAILED"):
        left = (f"the stack is {status}, resources may be half-deployed: see the events in the "
                "CloudFormation console, then `mfc deploy aws --delete`")
    else:
        left = f"the stack is {status}"
    return f"stack {stack}: {what}; {left}"


_PERFORM = re.compile(r"perform:?\s+([A-Za-z0-9-]+:[A-Za-z0-9*]+)")
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}


def denied_action(code: str, message: str, service: str, operation: str) -> str | None:
    """The IAM action a refused call needed (``cloudformation:CreateStack``), from the error's
    message when it names one, else from the call; None when the error is not an access denial."""
    if code not in DENIED_CODES:
        return None
    named = _PERFORM.search(message or "")
    return named.group(1) if named else f"{service}:{operation}"


def change_lines(stack: str, kind: str, described: Mapping[str, Any]) -> list[str]:
    """A described change set as lines: what would be added, modified (replaced or not), removed."""
    head = f"stack {stack}: {'create' if kind == 'CREATE' else 'update'} would"
    changes = [c.get("ResourceChange") or {} for c in described.get("Changes") or []]
    if not changes:
        reason = " ".join(str(described.get("StatusReason") or "").split())
        return [f"{head} change nothing" + (f" ({reason})" if reason else "")]
    lines = [f"{head} make {len(changes)} change{'s' if len(changes) != 1 else ''}:"]
    for change in sorted(changes, key=lambda c: (str(c.get("Action")), str(c.get("LogicalResourceId")))):
        action = str(change.get("Action") or "?")
        replace = " (replaced)" if str(change.get("Replacement")) == "True" else ""
        lines.append(f"  {action:<7} {change.get('LogicalResourceId')} ({change.get('ResourceType')}){replace}")
    return lines
