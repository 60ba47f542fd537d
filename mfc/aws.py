"""boto3 clients built from mfc's configuration (region, sandbox endpoints). boto3 is imported
only when a client is asked for, so nothing that runs locally pays for it."""

from __future__ import annotations

import os
from typing import Any

from mfc.exceptions import MfcError


def endpoint_for(service: str, config: Any = None) -> str | None:
    """The endpoint URL for a service: MFC_S3_ENDPOINT_URL / MFC_AWS_ENDPOINT_URL (or the
    profile's s3_endpoint_url / aws_endpoint_url), else boto3's own resolution."""
    if config is None:
        from mfc.config import Config

        config = Config()
    if service == "s3" and config["s3_endpoint_url"]:
        return config["s3_endpoint_url"]
    return config["aws_endpoint_url"] or None


def client(service: str, config: Any = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` honouring mfc's region and endpoint settings."""
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:  # pragma: no cover - boto3 is a dependency
        raise MfcError("boto3 is not installed; pip install boto3") from None
    if config is None:
        from mfc.config import Config

        config = Config()
    retries = BotoConfig(retries={"max_attempts": 10, "mode": "adaptive"}, max_pool_connections=32)
    endpoint = endpoint_for(service, config)
    session = boto3.session.Session()
    if session.get_credentials() is None and _is_sandbox(endpoint):
        # A local sandbox accepts any credentials; spare its users from exporting dummy ones.
        kwargs.setdefault("aws_access_key_id", SANDBOX_KEY)
        kwargs.setdefault("aws_secret_access_key", SANDBOX_KEY)
    return session.client(
        service, region_name=config["aws_region"], endpoint_url=endpoint,
        config=kwargs.pop("boto_config", retries), **kwargs,
    )


SANDBOX_KEY = "testing"


def _is_sandbox(endpoint: str | None) -> bool:
    from mfc.sandbox import is_local_endpoint

    return is_local_endpoint(endpoint)


def env_for_tasks(config: Any) -> dict[str, str]:
    """Environment variables that let a task in a container reach the same AWS endpoints."""
    env = {"AWS_DEFAULT_REGION": config["aws_region"]}
    for key in ("aws_endpoint_url", "s3_endpoint_url"):
        if config[key]:
            env[f"MFC_{key.upper()}"] = config[key]
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    if "AWS_ACCESS_KEY_ID" not in env and _is_sandbox(config["aws_endpoint_url"] or config["s3_endpoint_url"]):
        env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = SANDBOX_KEY
    return env
