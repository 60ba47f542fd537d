"""``mfc deploy aws``: create or update mfc's stack from the template, printing its events as they
arrive; ``--dry-run`` shows the change set instead; ``--delete`` tears the stack down.

A stack of that name that mfc did not deploy (no ``mfc:stack`` tag, no ``mfc:`` description) is
never touched. Every AWS error is one line (:mod:`mfc.deploy.errors`).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mfc.deploy import pure
from mfc.deploy.errors import calling
from mfc.exceptions import MfcError

Echo = Callable[[str], None]
CFN = "AWS CloudFormation"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
POLL_SECONDS = 5.0
# The template itself (package data in a wheel); deploy/cloudformation/mfc.yaml links to it.
TEMPLATE = Path(__file__).with_name("mfc.yaml")


def template_body(path: str | os.PathLike[str] | None = None) -> str:
    """The template's text (``path``, else mfc's own)."""
    where = Path(path) if path else TEMPLATE
    try:
        return where.read_text(encoding="utf-8")
    except OSError as exc:
        raise MfcError(f"cannot read the template {where}: {exc.strerror or exc}",
                       hint="pass --template PATH (deploy/cloudformation/mfc.yaml of the mfc repository)") from None


def _cfn(config: Any) -> Any:
    from mfc.aws import client

    return client("cloudformation", config)


def find_stack(cfn: Any, config: Any, name: str) -> dict[str, Any] | None:
    """The stack named ``name`` (DescribeStacks entry), None when there is none or it was deleted."""
    try:
        with calling(config, CFN, "cloudformation"):
            stacks = cfn.describe_stacks(StackName=name).get("Stacks") or []
    except MfcError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    live = [s for s in stacks if s.get("StackStatus") != "DELETE_COMPLETE"]
    return dict(live[0]) if live else None


def owned_stack(cfn: Any, config: Any, name: str) -> dict[str, Any] | None:
    """:func:`find_stack`, refusing a stack mfc did not deploy."""
    stack = find_stack(cfn, config, name)
    if stack is not None and not pure.is_mfc_stack(stack):
        raise MfcError(f"stack {name} exists but was not deployed by mfc (no {pure.STACK_TAG} tag, its description "
                       "does not start with 'mfc:'); mfc leaves it alone",
                       hint="pick another name with --stack NAME")
    return stack


def _declared(cfn: Any, config: Any, body: str) -> list[dict[str, Any]]:
    with calling(config, CFN, "cloudformation"):
        return list(cfn.get_template_summary(TemplateBody=body).get("Parameters") or [])


class Events:
    """Prints a stack's new events, oldest first, each once."""

    def __init__(self, cfn: Any, config: Any, name: str, echo: Echo) -> None:
        self.cfn, self.config, self.name, self.echo = cfn, config, name, echo
        self.seen: set[str] = set()
        self.all: list[dict[str, Any]] = []

    def skip_existing(self) -> None:
        """Forget the events of earlier deployments."""
        for event in self._fetch():
            self.seen.add(str(event.get("EventId")))

    def _fetch(self) -> list[dict[str, Any]]:
        """The stack's events newer than those seen (CloudFormation lists the newest first, so
        the pages stop at the first seen one)."""
        found: list[dict[str, Any]] = []
        try:
            with calling(self.config, CFN, "cloudformation"):
                for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=self.name):
                    for event in page.get("StackEvents") or []:
                        if str(event.get("EventId")) in self.seen:
                            return found
                        found.append(event)
                return found
        except MfcError as exc:
            if "does not exist" in str(exc):  # deleted: gone by name (moto: by id too)
                return []
            raise

    def pump(self) -> None:
        fresh = [e for e in self._fetch() if str(e.get("EventId")) not in self.seen]
        for event in sorted(fresh, key=lambda e: str(e.get("Timestamp") or "")):
            self.seen.add(str(event.get("EventId")))
            self.all.append(event)
            self.echo(pure.format_event(event))


def _wait(cfn: Any, config: Any, name: str, events: Events, poll: float) -> str:
    """Print events until the stack reaches a final status; returns it."""
    while True:
        events.pump()
        stack = find_stack(cfn, config, name)
        status = str(stack["StackStatus"]) if stack else "DELETE_COMPLETE"
        if status in pure.TERMINAL:
            events.pump()
            return status
        time.sleep(poll)


def deploy(config: Any, name: str, given: Mapping[str, str], template: str | None = None, echo: Echo = print,
           poll: float = POLL_SECONDS) -> dict[str, Any]:
    """Create or update stack ``name``; returns the stack (with its outputs). MfcError naming the
    failed resource and its reason when it fails."""
    pure.check_stack_name(name)
    cfn = _cfn(config)
    body = template_body(template)
    existing = owned_stack(cfn, config, name)
    if existing is not None and str(existing.get("StackStatus")) == "ROLLBACK_COMPLETE":
        raise MfcError(f"stack {name} failed to create earlier and is empty (ROLLBACK_COMPLETE)",
                       hint=f"delete it with `mfc deploy aws --stack {name} --delete`, then deploy again")
    if existing is not None and str(existing.get("StackStatus")).endswith("_IN_PROGRESS"):
        raise MfcError(f"stack {name} is {existing.get('StackStatus')}: another deployment is under way",
                       hint="wait for it to end (the CloudFormation console shows its events), then run this again")
    declared = _declared(cfn, config, body)
    pure.parse_parameters([f"{k}={v}" for k, v in given.items()], [str(p["ParameterKey"]) for p in declared])
    current = [str(p["ParameterKey"]) for p in (existing or {}).get("Parameters") or []]
    parameters = pure.stack_parameters(declared, given, current)
    events = Events(cfn, config, name, echo)
    tags = [{"Key": pure.STACK_TAG, "Value": name}]
    if existing is None:
        echo(f"creating stack {name} ...")
        try:
            with calling(config, CFN, "cloudformation"):
                cfn.create_stack(StackName=name, TemplateBody=body, Parameters=parameters,
                                 Capabilities=CAPABILITIES, Tags=tags, OnFailure="ROLLBACK")
        except MfcError as exc:
            raise _with_leftovers(exc, cfn, config, name) from None
    elif _up_to_date(cfn, config, existing, body, given):
        echo(f"stack {name} is up to date")
        return existing
    else:
        events.skip_existing()
        echo(f"updating stack {name} ...")
        try:
            with calling(config, CFN, "cloudformation"):
                cfn.update_stack(StackName=name, TemplateBody=body, Parameters=parameters,
                                 Capabilities=CAPABILITIES, Tags=tags)
        except MfcError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            echo(f"stack {name} is up to date")
            return find_stack(cfn, config, name) or existing
    status = _wait(cfn, config, name, events, poll)
    if status not in pure.SUCCEEDED:
        raise MfcError(pure.failure_message(name, status, events.all))
    stack = find_stack(cfn, config, name)
    assert stack is not None
    with calling(config, CFN, "cloudformation"):
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        count = sum(len(page.get("StackResourceSummaries") or []) for page in pages)
    echo(f"stack {name}: {status} ({count} resources)")
    return stack


def _up_to_date(cfn: Any, config: Any, stack: Mapping[str, Any], body: str, given: Mapping[str, str]) -> bool:
    """Whether a completed stack already runs this template with these parameters (no update is
    sent then: CloudFormation would refuse it, and moto's server fails some no-op updates)."""
    if not str(stack.get("StackStatus")).endswith("_COMPLETE") or \
            not pure.parameters_unchanged(stack.get("Parameters") or [], given):
        return False
    with calling(config, CFN, "cloudformation"):
        current = cfn.get_template(StackName=str(stack["StackName"]), TemplateStage="Original").get("TemplateBody")
    return current == body


def _with_leftovers(exc: MfcError, cfn: Any, config: Any, name: str) -> MfcError:
    """``exc``, saying what a create that failed left behind (moto, unlike AWS, fails the call and
    keeps what it had created)."""
    try:
        left = find_stack(cfn, config, name)
    except MfcError:
        left = None
    if left is None:
        return exc
    return MfcError(f"{exc}; stack {name} is left {left.get('StackStatus')} with what it created",
                    hint=f"`mfc deploy aws --stack {name} --delete` removes it")


def dry_run(config: Any, name: str, given: Mapping[str, str], template: str | None = None) -> list[str]:
    """The changes a deployment would make, as lines (a change set is created, described and
    deleted; nothing is deployed)."""
    pure.check_stack_name(name)
    cfn = _cfn(config)
    body = template_body(template)
    existing = owned_stack(cfn, config, name)
    declared = _declared(cfn, config, body)
    pure.parse_parameters([f"{k}={v}" for k, v in given.items()], [str(p["ParameterKey"]) for p in declared])
    current = [str(p["ParameterKey"]) for p in (existing or {}).get("Parameters") or []]
    change_set = f"mfc-dry-run-{uuid.uuid4().hex[:12]}"
    kind = "CREATE" if existing is None else "UPDATE"
    try:
        with calling(config, CFN, "cloudformation"):
            created = cfn.create_change_set(StackName=name, ChangeSetName=change_set, ChangeSetType=kind,
                                            TemplateBody=body, Capabilities=CAPABILITIES,
                                            Parameters=pure.stack_parameters(declared, given, current),
                                            Tags=[{"Key": pure.STACK_TAG, "Value": name}])
    except MfcError as exc:
        if "No updates are to be performed" not in str(exc):  # moto says so instead of an empty change set
            raise
        return pure.change_lines(name, kind, {"Changes": [], "StatusReason": "the stack is up to date"})
    arn = created["Id"]
    try:
        with calling(config, CFN, "cloudformation"):
            described = _described(cfn, arn)
    finally:
        with calling(config, CFN, "cloudformation"):
            cfn.delete_change_set(ChangeSetName=arn)
            if kind == "CREATE":  # a CREATE change set leaves an empty REVIEW_IN_PROGRESS stack behind
                _delete_review_stack(cfn, name)
    return pure.change_lines(name, kind, described)


def _described(cfn: Any, arn: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = dict(cfn.describe_change_set(ChangeSetName=arn))
        if described.get("Status") not in ("CREATE_PENDING", "CREATE_IN_PROGRESS") or time.monotonic() > deadline:
            return described
        time.sleep(2)


def _delete_review_stack(cfn: Any, name: str) -> None:
    stacks = cfn.describe_stacks(StackName=name).get("Stacks") or []
    if stacks and stacks[0].get("StackStatus") == "REVIEW_IN_PROGRESS":
        cfn.delete_stack(StackName=name)


def _bucket_of(stack: Mapping[str, Any]) -> str | None:
    root = pure.outputs_to_settings(stack.get("Outputs") or []).get("datastore_root", "")
    return root[len("s3://"):].split("/", 1)[0] if root.startswith("s3://") else None


def _objects(s3: Any, bucket: str) -> tuple[int, list[str]]:
    """How many objects the bucket holds (counted to 1,000) and the flows they belong to."""
    try:
        listed = s3.list_objects_v2(Bucket=bucket, MaxKeys=1000)
    except s3.exceptions.NoSuchBucket:
        return 0, []
    keys = [str(o["Key"]) for o in listed.get("Contents") or []]
    flows = sorted({k.split("/")[1] for k in keys if k.count("/") >= 2})
    return len(keys), flows


def _empty(s3: Any, bucket: str) -> int:
    removed = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents") or []]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            removed += len(keys)
    return removed


def delete(config: Any, name: str, force: bool = False, echo: Echo = print, poll: float = POLL_SECONDS) -> None:
    """Delete stack ``name``; refused while its bucket holds runs unless ``force`` (which deletes
    them first)."""
    from mfc.aws import client

    pure.check_stack_name(name)
    cfn = _cfn(config)
    stack = owned_stack(cfn, config, name)
    if stack is None:
        raise MfcError(f"no stack {name} to delete (it does not exist or was deleted)")
    bucket = _bucket_of(stack)
    if bucket:
        s3 = client("s3", config)
        with calling(config, "Amazon S3", "s3"):
            count, flows = _objects(s3, bucket)
            if count and not force:
                more = "+" if count >= 1000 else ""
                raise MfcError(f"bucket {bucket} of stack {name} holds {count}{more} objects (runs of "
                               f"{', '.join(flows) or 'flows'}); deleting the stack would delete them",
                               hint="copy what you need, then pass --force to delete them with the stack")
            if count:
                echo(f"emptying bucket {bucket} (--force) ...")
                echo(f"deleted {_empty(s3, bucket)} objects")
    stack_id = str(stack.get("StackId") or name)  # a deleted stack is found by its id only
    events = Events(cfn, config, stack_id, echo)
    events.skip_existing()
    echo(f"deleting stack {name} ...")
    with calling(config, CFN, "cloudformation"):
        cfn.delete_stack(StackName=name)
    status = _wait(cfn, config, stack_id, events, poll)
    if status != "DELETE_COMPLETE":
        raise MfcError(pure.failure_message(name, status, events.all))
    registry = pure.outputs_to_settings(stack.get("Outputs") or []).get("image_registry")
    echo(f"stack {name}: deleted" + (f" (the flow image repositories mfc created on push, {registry}/mfc-flow-*, "
                                      "stay: delete them in ECR)" if registry else ""))
