"""``mfc configure --from-stack NAME``: a profile from a deployed stack's outputs (each output is
named after the setting it fills; the service token is read from its Secrets Manager secret)."""

from __future__ import annotations

import os
from typing import Any

from mfc.deploy import pure
from mfc.deploy.errors import calling
from mfc.exceptions import MfcError

# What a profile from a stack holds: a new configure replaces these and keeps the rest (max_workers ...).
FROM_STACK = {"datastore_root", "aws_region", "batch_queue", "batch_gpu_queue", "batch_job_role", "sfn_role",
              "events_role", "image_registry", "service_url", "service_token", "metadata", "aws_endpoint_url",
              "s3_endpoint_url", "aws_stack"}
REQUIRED = ("datastore_root", "aws_region", "batch_queue", "batch_job_role", "sfn_role", "events_role")


def profile_values(config: Any, name: str) -> dict[str, Any]:
    """The profile's settings from stack ``name`` (reached with ``config``'s region and endpoints,
    which a profile for a sandbox keeps)."""
    from mfc.aws import client
    from mfc.deploy.stack import owned_stack

    pure.check_stack_name(name)
    stack = owned_stack(client("cloudformation", config), config, name)
    where = config["aws_endpoint_url"] or f"region {config['aws_region']}"
    if stack is None:
        raise MfcError(f"no stack {name} in {where} (never deployed, or deleted)",
                       hint=f"deploy it with `mfc deploy aws --stack {name}`, or check aws_region")
    status = str(stack.get("StackStatus"))
    if status not in pure.READY:
        raise MfcError(f"stack {name} is {status}, not deployed", hint=f"run `mfc deploy aws --stack {name}` first")
    values: dict[str, Any] = pure.outputs_to_settings(stack.get("Outputs") or [])
    missing = [s for s in REQUIRED if not values.get(s)]
    if missing:
        raise MfcError(f"stack {name} has no output {pure.output_for_setting(missing[0])} (for {missing[0]})",
                       hint="was it deployed from mfc's template? `mfc deploy aws` updates it")
    if values.get("service_token"):
        secrets = client("secretsmanager", config)
        with calling(config, "AWS Secrets Manager", "secretsmanager"):
            secret = secrets.get_secret_value(SecretId=values["service_token"])["SecretString"]
        from mfc.service.auth import bootstrap_token

        values["service_token"] = bootstrap_token(secret)  # the token the service accepts for it
        values["metadata"] = "service"
    for key in ("aws_endpoint_url", "s3_endpoint_url"):
        if config[key]:
            values[key] = config[key]
    values["aws_stack"] = name
    return values


def write(config: Any, name: str, profile: str, path: str | None = None) -> tuple[str, dict[str, Any]]:
    """Write profile ``profile`` from stack ``name`` (other profiles stay as they are, and so do the
    profile's own settings no stack fills, e.g. max_workers); returns the config file and the
    values. A file holding a service token is made readable by its owner only."""
    from mfc.config import config_path
    from mfc.sandbox.profile import read_profile, write_profile

    values = profile_values(config, name)
    target = path or config_path()
    kept = {k: v for k, v in (read_profile(target, profile) or {}).items() if k not in FROM_STACK}
    values = {**values, **kept}
    write_profile(target, profile, values, comment=f"Written by `mfc configure --from-stack {name}`.")
    if values.get("service_token"):
        os.chmod(target, 0o600)
    return target, values
