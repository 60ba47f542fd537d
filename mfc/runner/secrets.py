"""``@secrets``: read secrets from AWS Secrets Manager into a task's environment before its step
runs. Values go only into ``os.environ`` of the task process: never into logs, specs or artifacts."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from mfc.exceptions import MfcError

AWS_TYPE = "aws-secrets-manager"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretsError(MfcError):
    """A secret could not be read or turned into environment variables (one line, no traceback)."""


def parse_sources(sources: Any, where: str = "") -> list[dict[str, Any]]:
    """Normalise ``@secrets(sources=...)`` to ``{"type", "id", "options"}`` dicts (ids as given)."""
    if isinstance(sources, (str, dict)):
        sources = [sources]
    if not isinstance(sources, (list, tuple)):
        raise MfcError(f"{where}@secrets(sources={sources!r}): expected a list of secret ids or dicts")
    parsed = []
    for source in sources:
        if isinstance(source, str):
            source = {"type": AWS_TYPE, "id": source}
        if not isinstance(source, dict) or not isinstance(source.get("id"), str) or not source["id"]:
            raise MfcError(f"{where}@secrets: source {source!r} must be a secret id or a dict with an 'id'")
        kind = source.get("type") or AWS_TYPE
        if kind != AWS_TYPE:
            raise MfcError(f"{where}@secrets: source {source['id']!r} has type {kind!r}; only {AWS_TYPE!r} is supported")
        options = source.get("options") or {}
        if not isinstance(options, dict):
            raise MfcError(f"{where}@secrets: options of source {source['id']!r} must be a dict")
        parsed.append({"type": kind, "id": source["id"], "options": options})
    return parsed


def env_name(key: str) -> str:
    """A secret's key as an environment variable name ('-', '.' and '/' become '_')."""
    return key.replace("-", "_").replace(".", "_").replace("/", "_")


def secret_env(secret_id: str, name: str, response: dict[str, Any], options: dict[str, Any]) -> dict[str, str]:
    """The environment variables one GetSecretValue ``response`` gives (pure; see docs/secrets.md)."""
    if "SecretString" in response:
        text = response["SecretString"]
        if not options.get("json", True):
            return _checked(secret_id, {env_name(options.get("env_var_name") or name): text})
        try:
            value = json.loads(text)
        except ValueError:
            raise SecretsError(f"@secrets: secret {secret_id!r} is not valid JSON; give options={{'json': False}} "
                               "to read it as one variable") from None
        if not isinstance(value, dict):
            raise SecretsError(f"@secrets: secret {secret_id!r} is JSON but not an object of names to values")
        return _checked(secret_id, {env_name(str(k)): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()})
    if "SecretBinary" in response:
        blob = base64.b64encode(response["SecretBinary"]).decode()
        return _checked(secret_id, {env_name(options.get("env_var_name") or name): blob})
    raise SecretsError(f"@secrets: secret {secret_id!r} has neither a string nor a binary value")


def _checked(secret_id: str, env: dict[str, str]) -> dict[str, str]:
    for key in env:
        if not _ENV_NAME.fullmatch(key):
            raise SecretsError(f"@secrets: secret {secret_id!r} has key {key!r}, which is not a valid environment "
                               "variable name (letters, digits and '_', not starting with a digit)")
    return env


def load_secrets(sources: list[dict[str, Any]], role: str | None = None) -> dict[str, str]:
    """Read every source and return the environment they make together. Fails with one line
    naming the secret when it is missing, unreadable, or clashes with another secret or the
    task's environment."""
    import os

    from mfc.aws import client, session_client

    sm = _assumed(role) if role else client("secretsmanager")
    env: dict[str, str] = {}
    for source in sources:
        options = source["options"]
        secret_id = source["id"]
        region = options.get("region") or sm.meta.region_name
        reader = sm if region == sm.meta.region_name else session_client("secretsmanager", region, sm.meta.endpoint_url)
        response = _get(reader, secret_id, region)
        name = response.get("Name") or secret_id
        for key, value in secret_env(secret_id, name, response, options).items():
            if key in env:
                raise SecretsError(f"@secrets: variable {key} comes from two secrets (the second: {secret_id!r})")
            if key in os.environ:
                raise SecretsError(f"@secrets: variable {key} from secret {secret_id!r} is already set in the "
                                   "task's environment")
            env[key] = value
    return env


def _get(reader: Any, secret_id: str, region: str) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(reader.get_secret_value(SecretId=secret_id))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise SecretsError(f"@secrets: secret {secret_id!r} does not exist in AWS Secrets Manager "
                               f"(region {region})") from None
        if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            raise SecretsError(f"@secrets: reading secret {secret_id!r} was denied ({code}, region {region}); "
                               "check the task role's secretsmanager:GetSecretValue permission") from None
        raise SecretsError(f"@secrets: reading secret {secret_id!r} failed: {code or exc} (region {region})") from None
    except BotoCoreError as exc:
        raise SecretsError(f"@secrets: reading secret {secret_id!r} failed: {exc} (region {region})") from None


def _assumed(role: str) -> Any:
    from mfc.aws import client, session_client

    creds = client("sts").assume_role(RoleArn=role, RoleSessionName="mfc-secrets")["Credentials"]
    base = client("secretsmanager")
    return session_client("secretsmanager", base.meta.region_name, base.meta.endpoint_url,
                          aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"])
