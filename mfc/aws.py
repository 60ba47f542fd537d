"""boto3 clients built from mfc's configuration (region, sandbox endpoints). boto3 is imported
only when a client is asked for, so nothing that runs locally pays for it."""

from __future__ import annotations

import os
import threading
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
    session = _session(boto3)
    if session.get_credentials() is None and _is_sandbox(endpoint):
        # A local sandbox accepts any credentials; spare its users from exporting dummy ones.
        kwargs.setdefault("aws_access_key_id", SANDBOX_KEY)
        kwargs.setdefault("aws_secret_access_key", SANDBOX_KEY)
    with _session_lock():
        return session.client(
            service, region_name=config["aws_region"], endpoint_url=endpoint,
            config=kwargs.pop("boto_config", retries), **kwargs,
        )


# One boto3 Session per process and credential environment: botocore keeps the parsed service
# models on the session, so a second client costs ~5 ms instead of ~70 ms. A forked task inherits
# its parent's (a session holds no connections; clients, which do, are made per process).
_SESSIONS: dict[tuple[Any, ...], Any] = {}
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                   "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_DEFAULT_REGION")
_LOCK: tuple[int, threading.Lock] = (os.getpid(), threading.Lock())


def _session_lock() -> threading.Lock:
    """botocore sessions are not thread-safe: clients are made one at a time (a fresh lock after
    a fork, where another thread may have held the parent's)."""
    global _LOCK
    if _LOCK[0] != os.getpid():
        _LOCK = (os.getpid(), threading.Lock())
    return _LOCK[1]


def _session(boto3: Any) -> Any:
    key = tuple(os.environ.get(name) for name in _CREDENTIAL_ENV)
    with _session_lock():
        found = _SESSIONS.get(key)
        if found is None:
            found = _SESSIONS[key] = boto3.session.Session()
        return found


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
