"""``mfc doctor``'s IAM checks: each role exists and trusts the service that assumes it, and the
Step Functions and job roles allow what compiled flows use.

Permissions are asked of IAM's policy simulator (``iam:SimulatePrincipalPolicy``); where it is
not available (not allowed to the caller, or not implemented, as in moto) the role's own
policies are read (inline and attached) and their Allow statements' actions compared, without
resource scopes or conditions."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from mfc.deploy.result import Check
from mfc.sfn.lint import (
    BATCH_SYNC_ACTIONS,
    DATASTORE_ACTIONS,
    DISTRIBUTED_MAP_ACTIONS,
    allows,
    policy_actions,
)

# What any compiled flow may need of each role (see mfc.sfn.lint.required_actions).
SFN_ACTIONS = sorted({*BATCH_SYNC_ACTIONS, *DISTRIBUTED_MAP_ACTIONS, "s3:GetObject", "batch:TagResource"})
JOB_ACTIONS = sorted({*DATASTORE_ACTIONS, "states:DescribeExecution"})
ROLE_SERVICES = {  # setting -> the services that assume it
    "batch_job_role": ("ecs-tasks.amazonaws.com",),
    "sfn_role": ("states.amazonaws.com",),
    "events_role": ("events.amazonaws.com", "scheduler.amazonaws.com"),
}


def role_name(arn: str) -> str:
    """The role's name from its ARN (``arn:aws:iam::1:role/path/name`` -> ``name``)."""
    return arn.rsplit("/", 1)[-1] if ":role/" in arn else arn


def trusted_services(document: Any) -> set[str]:
    """The services an assume-role policy document (dict, JSON or URL-encoded JSON) lets assume the role."""
    document = _document(document)
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    found: set[str] = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        service = (statement.get("Principal") or {}).get("Service", []) if isinstance(statement.get("Principal"), dict) else []
        found.update([service] if isinstance(service, str) else service)
    return found


def trust_check(iam: Any, label: str, arn: str | None, services: Iterable[str], fix_unset: str) -> Check:
    """Whether the role ``arn`` exists and trusts each of ``services``."""
    name = f"role {label}"
    if not arn:
        return Check(name, False, "not set", fix_unset)
    try:
        role = iam.get_role(RoleName=role_name(arn))["Role"]
    except iam.exceptions.NoSuchEntityException:
        return Check(name, False, f"{arn} does not exist",
                     "run `mfc deploy aws` (it recreates the stack's roles), then `mfc configure --from-stack`")
    missing = sorted(set(services) - trusted_services(role.get("AssumeRolePolicyDocument") or {}))
    if missing:
        return Check(name, False, f"{role_name(arn)} does not trust {', '.join(missing)}",
                     f"add {' and '.join(missing)} to its trust policy (the template's does), or `mfc deploy aws`")
    return Check(name, True, f"{role_name(arn)} trusts {', '.join(sorted(services))}")


def instance_role(iam: Any, profile_arn: str) -> str | None:
    """The role of an instance profile (ARN or name), None when it has none or does not exist."""
    try:
        profile = iam.get_instance_profile(InstanceProfileName=profile_arn.rsplit("/", 1)[-1])["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        return None
    roles = profile.get("Roles") or []
    return str(roles[0]["Arn"]) if roles else None


def _document(document: Any) -> dict[str, Any]:
    """A policy document as IAM returns it: a dict, or (URL-encoded) JSON text."""
    if not isinstance(document, str):
        return dict(document)
    text = unquote(document)
    try:
        return dict(json.loads(text))
    except ValueError:
        # moto returns the inline policies of a CloudFormation role as Python's repr of the dict.
        return dict(ast.literal_eval(text))


def role_actions(iam: Any, name: str) -> list[str]:
    """The action patterns the role's inline and attached policies allow."""
    patterns: list[str] = []
    for policy in iam.list_role_policies(RoleName=name).get("PolicyNames") or []:
        patterns += policy_actions(_document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]))
    for attached in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies") or []:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        patterns += policy_actions(_document(version["PolicyVersion"]["Document"]))
    return patterns


def _simulated_denials(iam: Any, arn: str, actions: list[str]) -> list[str] | None:
    """The actions IAM's simulator denies the role, None when the simulator cannot be used."""
    try:
        answer = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=actions)
    except Exception:  # noqa: BLE001 - not allowed or not implemented: read the policies instead
        return None
    return [str(r["EvalActionName"]) for r in answer.get("EvaluationResults") or []
            if r.get("EvalDecision") != "allowed"]


def missing_actions(needed: Iterable[str], patterns: list[str]) -> list[str]:
    """The ``needed`` actions no pattern allows."""
    return [a for a in needed if not allows(patterns, a)]


def permission_check(iam: Any, label: str, arn: str | None, needed: list[str], why: str) -> Check:
    """Whether role ``arn`` allows each of ``needed``."""
    name = f"permissions {label}"
    if not arn:
        return Check(name, None, "role not set")
    denied = _simulated_denials(iam, arn, needed)
    how = "IAM policy simulator"
    if denied is None:
        try:
            denied = missing_actions(needed, role_actions(iam, role_name(arn)))
        except iam.exceptions.NoSuchEntityException:
            return Check(name, False, f"{arn} does not exist", "run `mfc deploy aws`")
        how = "its policies"
    if denied:
        return Check(name, False, f"{role_name(arn)} does not allow {', '.join(denied)} ({why}; checked with {how})",
                     "add them to the role's policy (the template's has them), or `mfc deploy aws`")
    return Check(name, True, f"{role_name(arn)} allows the {len(needed)} actions {why} (checked with {how})")


def role_checks(iam: Any, settings: Mapping[str, Any], environments: list[dict[str, Any]]) -> list[Check]:
    """Trust and permission checks of the profile's roles and its queues' Batch roles."""
    checks = [trust_check(iam, key, settings.get(key), services,
                          f"set {key} (`mfc configure --from-stack` fills it)")
              for key, services in ROLE_SERVICES.items()]
    seen: set[str] = set()  # compute environments usually share their roles: one line each
    for ce in environments:
        ce_name = str(ce.get("computeEnvironmentName"))
        if ce.get("serviceRole") and ce["serviceRole"] not in seen:
            seen.add(ce["serviceRole"])
            checks.append(trust_check(iam, f"Batch service ({ce_name})", str(ce["serviceRole"]),
                                      ["batch.amazonaws.com"], ""))
        profile = (ce.get("computeResources") or {}).get("instanceRole")
        if profile and profile not in seen:
            seen.add(profile)
            role = instance_role(iam, str(profile))
            checks.append(trust_check(iam, f"Batch instances ({ce_name})", role, ["ec2.amazonaws.com"],
                                      f"give instance profile {profile} a role (the template's InstanceRole)"))
    checks.append(permission_check(iam, "sfn_role", settings.get("sfn_role"), SFN_ACTIONS,
                                   "compiled state machines use"))
    checks.append(permission_check(iam, "batch_job_role", settings.get("batch_job_role"), JOB_ACTIONS,
                                   "tasks use"))
    return checks
