"""boto3 clients built from mfc's configuration (region, sandbox endpoints). boto3 is imported
only when a client is asked for, so nothing that runs locally pays for it."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from mfc.exceptions import MfcError

if TYPE_CHECKING:
    from mfc.stores.settings import S3Settings


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
    """A boto3 client for ``service`` honouring mfc's region and endpoint settings (``config``,
    a resolved :class:`mfc.config.Config`; the environment's when None)."""
    if config is None:
        from mfc.config import Config

        config = Config()
    boto_config = kwargs.pop("boto_config", None)
    return session_client(service, config["aws_region"], endpoint_for(service, config), boto_config, **kwargs)


def s3_settings(config: Any = None) -> S3Settings:
    """The S3 store's settings from ``config`` (the environment's when None: a task process
    gets its endpoint and region in its environment, see :func:`env_for_tasks`)."""
    from mfc.stores.settings import S3Settings

    if config is None:
        from mfc.config import Config

        config = Config()
    return S3Settings.from_config(config)


def session_client(service: str, region: str | None, endpoint: str | None, boto_config: Any = None,
                   **kwargs: Any) -> Any:
    """A boto3 client for ``service`` in ``region`` at ``endpoint`` (None: boto3's defaults),
    made from this process's shared session. ``boto_config``: a botocore Config (default:
    adaptive retries, 32 connections)."""
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:  # pragma: no cover - boto3 is a dependency
        raise MfcError("boto3 is not installed; pip install boto3") from None
    if boto_config is None:
        boto_config = BotoConfig(retries={"max_attempts": 10, "mode": "adaptive"}, max_pool_connections=32)
    with _LOCK:  # botocore sessions are not thread-safe: one client at a time
        session = _session(boto3)
        if session.get_credentials() is None and is_local_endpoint(endpoint):
            # A local sandbox accepts any credentials; spare its users from exporting dummy ones.
            kwargs.setdefault("aws_access_key_id", SANDBOX_KEY)
            kwargs.setdefault("aws_secret_access_key", SANDBOX_KEY)
        return session.client(service, region_name=region, endpoint_url=endpoint, config=boto_config, **kwargs)


# One boto3 Session per process and credential environment: botocore keeps the parsed service
# models on the session, so a second client costs ~6 ms instead of ~70 ms. A forked task inherits
# its parent's (a session holds no connections; clients, which do, are made per process).
_SESSIONS: dict[tuple[str | None, ...], Any] = {}
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                   "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_DEFAULT_REGION")
_LOCK = threading.Lock()


def _fresh_lock() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # another thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_fresh_lock)


def _session(boto3: Any) -> Any:
    key = tuple(os.environ.get(name) for name in _CREDENTIAL_ENV)
    if key not in _SESSIONS:
        _SESSIONS[key] = boto3.session.Session()
    return _SESSIONS[key]


def is_local_endpoint(url: str | None) -> bool:
    """Whether ``url`` points at this machine (a sandbox), where dummy credentials are fine."""
    if not url:
        return False
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


SANDBOX_KEY = "testing"


def env_for_tasks(config: Any) -> dict[str, str]:
    """Environment variables that let a task in a container reach the same AWS endpoints."""
    env = {"AWS_DEFAULT_REGION": config["aws_region"]}
    for key in ("aws_endpoint_url", "s3_endpoint_url"):
        if config[key]:
            env[f"MFC_{key.upper()}"] = config[key]
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    if "AWS_ACCESS_KEY_ID" not in env and is_local_endpoint(config["aws_endpoint_url"] or config["s3_endpoint_url"]):
        env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = SANDBOX_KEY
    return env
