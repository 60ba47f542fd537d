"""``mfc doctor``: whether a profile's AWS resources are there and usable, one line each with how
to fix it: credentials, region, the stack, bucket (reachable and writable), job queues (VALID and
ENABLED), roles (exist and trust the right services; see :mod:`mfc.deploy.iam_checks`), images in
their registry, the metadata service (healthy, token accepted)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from mfc.deploy import pure
from mfc.deploy.result import Check
from mfc.runner.batch_setup import explain

CREDENTIALS_FIX = "configure credentials (AWS_PROFILE, `aws configure`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


def _client(service: str, config: Any) -> Any:
    from mfc.runner.batch_setup import quick_client

    return quick_client(service, config)


def credentials(config: Any) -> Check:
    try:
        who = _client("sts", config).get_caller_identity()
    except Exception as exc:  # noqa: BLE001 - reported as a line
        return Check("credentials", False, explain(exc), CREDENTIALS_FIX)
    return Check("credentials", True, str(who.get("Arn")))


def region(config: Any) -> Check:
    from mfc.aws import is_local_endpoint

    name = str(config["aws_region"] or "")
    fix = "set aws_region (MFC_AWS_REGION or the profile) to the stack's region, e.g. us-east-1"
    if not _REGION.fullmatch(name):
        return Check("region", False, f"{name!r} is not an AWS region", fix)
    if not is_local_endpoint(config["aws_endpoint_url"]):
        import boto3

        known = boto3.session.Session().get_available_regions("batch")
        if known and name not in known:
            return Check("region", False, f"{name} has no AWS Batch", fix)
    return Check("region", True, name + (f" at {config['aws_endpoint_url']}" if config["aws_endpoint_url"] else ""))


def stack(config: Any) -> Check:
    from mfc.deploy.stack import find_stack

    name = config["aws_stack"]
    if not name:
        return Check("stack", None, "the profile names none (`mfc configure --from-stack` records it)")
    fix = f"`mfc deploy aws --stack {name}`, then `mfc configure --from-stack {name}`"
    try:
        found = find_stack(_client("cloudformation", config), config, name)
    except Exception as exc:  # noqa: BLE001
        return Check("stack", False, str(exc), fix)
    if found is None:
        return Check("stack", False, f"{name} does not exist (deleted?); the profile points at it", fix)
    status = str(found.get("StackStatus"))
    ok = status in pure.READY
    return Check("stack", ok, f"{name} is {status}", fix)


def bucket(config: Any) -> Check:
    root = str(config["datastore_root"] or "")
    if not root.startswith("s3://"):
        return Check("bucket", False, f"datastore_root {root} is not s3://",
                     "set datastore_root to s3://BUCKET/PREFIX (`mfc configure --from-stack`)")
    name, _, prefix = root[len("s3://"):].partition("/")
    s3 = _client("s3", config)
    key = f"{prefix.strip('/') + '/' if prefix.strip('/') else ''}.mfc-doctor/{uuid.uuid4().hex}"
    try:
        s3.head_bucket(Bucket=name)
    except Exception as exc:  # noqa: BLE001
        return Check("bucket", False, f"{name} cannot be reached: {explain(exc)}",
                     "check datastore_root and that the stack exists (`mfc deploy aws`)")
    try:
        s3.put_object(Bucket=name, Key=key, Body=b"mfc doctor")
        s3.delete_object(Bucket=name, Key=key)
    except Exception as exc:  # noqa: BLE001
        return Check("bucket", False, f"{name} is not writable: {explain(exc)}",
                     "allow s3:PutObject and s3:DeleteObject on it to these credentials")
    return Check("bucket", True, f"{name} reachable and writable")


def queue(config: Any, key: str, batch: Any) -> tuple[Check, list[dict[str, Any]]]:
    """The queue of setting ``key`` and its compute environments, VALID and ENABLED."""
    from mfc.runner.batch_setup import describe_queue

    name = config[key]
    label = f"queue {key}"
    if not name:
        return Check(label, False, "not set", f"set {key} (`mfc configure --from-stack` fills it)"), []
    try:
        desc, ces = describe_queue(batch, name)
    except Exception as exc:  # noqa: BLE001
        return Check(label, False, explain(exc), CREDENTIALS_FIX), []
    if desc is None:
        return Check(label, False, f"{name} does not exist",
                     f"`mfc deploy aws` recreates it, or set {key} to an existing queue"), []
    problems = [f"{name} is {desc.get('state')}/{desc.get('status')}"] \
        if desc.get("state") != "ENABLED" or desc.get("status") != "VALID" else []
    problems += [f"compute environment {c.get('computeEnvironmentName')} is {c.get('state')}/{c.get('status')}"
                 for c in ces if c.get("state") != "ENABLED" or c.get("status") != "VALID"]
    if problems:
        return Check(label, False, "; ".join(problems),
                     f"aws batch update-job-queue --job-queue {name} --state ENABLED (and its compute environments)"), ces
    return Check(label, True, f"{name} ENABLED/VALID, {len(ces)} compute environment(s) ENABLED/VALID"), ces


def image(config: Any, key: str) -> Check:
    """Whether the image of setting ``key`` is in its registry (when one is set)."""
    from mfc.builder.push import parse_registry, remote_status

    ref = config[key]
    label = f"image {key}"
    if not ref:
        return Check(label, None, "not set (flows build their image and push it to image_registry)")
    host, _, rest = str(ref).partition("/")
    repository, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    fix = f"push it (`mfc image push`, or docker push {ref}), or set {key} to an image that is there"
    try:
        registry = parse_registry(host)
    except Exception as exc:  # noqa: BLE001 - Docker Hub or a local image: nothing to ask
        return Check(label, None, f"{ref} is not in a registry mfc can check ({exc})")
    try:
        if registry.ecr is not None:
            from mfc.builder.ecr import already_pushed, ecr_client

            found = already_pushed(ecr_client(registry.ecr.region, config), repository, tag, registry.ecr.account)
            present = found is not None
        else:
            state, why = remote_status(registry, repository, tag)
            if state not in ("present", "absent"):
                return Check(label, False, f"{ref}: registry {host} is {state} ({why})", fix)
            present = state == "present"
    except Exception as exc:  # noqa: BLE001
        return Check(label, False, f"{ref}: {exc}", fix)
    return Check(label, True, f"{ref} is in the registry") if present else Check(label, False, f"{ref} is not in the registry", fix)


def service(config: Any) -> Check:
    """GET /health, then /api/v1/whoami with the profile's token."""
    from mfc.stores.service_client import ServiceClient

    url = config["service_url"]
    if not url:
        return Check("service", None, "service_url not set (runs are recorded in the datastore only)")
    fix = "check service_url and that the service runs (`mfc deploy aws -p EnableService=true`)"
    client = ServiceClient(str(url), config["service_token"], retries=0)
    try:
        client.get("/health")
    except Exception as exc:  # noqa: BLE001
        return Check("service", False, f"{url} is not healthy: {exc}", fix)
    if not config["service_token"]:
        return Check("service", False, f"{url} is healthy but service_token is not set",
                     "`mfc configure --from-stack` reads it from Secrets Manager")
    try:
        who = client.whoami()
    except Exception as exc:  # noqa: BLE001
        return Check("service", False, f"{url} refused the token: {exc}",
                     "set service_token to a valid token (`mfc configure --from-stack` after rotating it)")
    return Check("service", True, f"{url} healthy, token {who.get('token_id', 'accepted')} accepted")


def run(config: Any, echo: Callable[[str], None] | None = None) -> list[Check]:
    """Every check, in order (each printed with ``echo`` as it is known); AWS checks are skipped
    when there are no usable credentials."""
    from mfc.deploy.iam_checks import role_checks

    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        if echo is not None:
            echo(check.line())

    creds = credentials(config)
    add(creds)
    add(region(config))
    if creds.ok:
        add(stack(config))
        add(bucket(config))
        batch = _client("batch", config)
        environments: list[dict[str, Any]] = []
        for key in ("batch_queue", "batch_gpu_queue"):
            result, ces = queue(config, key, batch)
            add(result)
            environments += [c for c in ces if c not in environments]
        for result in role_checks(_client("iam", config), config.values, environments):
            add(result)
    for key in ("image", "gpu_image"):
        add(image(config, key))
    add(service(config))
    return checks
