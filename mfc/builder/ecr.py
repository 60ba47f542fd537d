"""Amazon ECR as a flow image registry: the repository (scan on push, a lifecycle policy), the
docker login credentials and whether a tag is already there.

Each function takes a boto3 ECR client, so the same code runs against AWS and a moto server.
boto3 is imported only by :func:`ecr_client`. Every AWS error becomes one-line :class:`MfcError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mfc.exceptions import MfcError

DEFAULT_KEEP_IMAGES = 50
# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]
_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_T = TypeVar("_T")
_DENIED = ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
           "ExpiredTokenException", "InvalidClientTokenId")
_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]+)</Message>")


@dataclass(frozen=True)
class EcrRegistry:
    """The account and region an ECR registry host names."""

    host: str
    account: str
    region: str


def parse_ecr_host(host: str) -> EcrRegistry | None:
    """The ECR registry ``host`` names (``123456789012.dkr.ecr.us-east-1.amazonaws.com``), else None."""
    match = _ECR_HOST.match(host.lower())
    return EcrRegistry(host.lower(), match.group(1), match.group(2)) if match else None


def lifecycle_policy(keep: int = DEFAULT_KEEP_IMAGES) -> str:
    """The lifecycle policy (JSON text) that expires all but the ``keep`` most recent images."""
    if keep < 1:
        raise MfcError(f"keep at least 1 image in an ECR repository (got {keep})")
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"mfc: keep the last {keep} flow images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }]}, sort_keys=True)


def ecr_client(region: str, config: Any = None) -> Any:
    """A boto3 ECR client for ``region`` (the registry's, whatever ``aws_region`` says) with mfc's
    endpoint and retry settings."""
    import copy

    from mfc import aws
    from mfc.config import Config

    config = copy.copy(config if config is not None else Config())
    config.values = {**config.values, "aws_region": region}
    return aws.client("ecr", config)


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(((response or {}).get("Error") or {}).get("Code") or "") if isinstance(response, dict) else ""


def _call(what: str, fn: Callable[..., _T], *, allow: tuple[str, ...] = (), **kwargs: Any) -> _T | None:
    """``fn(**kwargs)``, or None for an AWS error whose code is in ``allow``; any other botocore
    error becomes one line naming ``what`` and the AWS error code."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        code = _error_code(exc)
        if code in allow:
            return None
        message = " ".join(str(exc.response.get("Error", {}).get("Message") or exc).split())
        xml_code, xml_message = _XML_CODE.search(message), _XML_MESSAGE.search(message)
        if xml_code and xml_message:  # an XML error body botocore could not read (moto's IAM check)
            code, message = xml_code.group(1), xml_message.group(1)
        hint = ""
        if code in _DENIED or code in ("401", "403"):
            hint = " (check your AWS credentials and their ECR permissions)"
        raise MfcError(f"ECR {what} failed: {code}: {message[:300]}{hint}") from None
    except NoCredentialsError:
        raise MfcError(f"ECR {what} failed: no AWS credentials found (set AWS_PROFILE or "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)") from None
    except EndpointConnectionError as exc:
        raise MfcError(f"ECR {what} failed: cannot reach {getattr(exc, 'kwargs', {}).get('endpoint_url') or 'ECR'} "
                       "(check the network, aws_region and aws_endpoint_url)") from None
    except BotoCoreError as exc:
        raise MfcError(f"ECR {what} failed: {' '.join(str(exc).split())[:300]}") from None


def _registry_id(account: str | None) -> dict[str, Any]:
    return {"registryId": account} if account else {}


def ensure_repository(client: Any, name: str, keep: int = DEFAULT_KEEP_IMAGES, account: str | None = None) -> bool:
    """Create repository ``name`` if missing (scan on push, lifecycle policy keeping ``keep`` images).

    True when it was created now. An existing repository with no lifecycle policy gets ours; one
    with a policy keeps it (it may be the user's), and its scan setting is left as it is.
    """
    policy = lifecycle_policy(keep)
    created = _call(f"create_repository {name}", client.create_repository, allow=("RepositoryAlreadyExistsException",),
                    repositoryName=name, imageScanningConfiguration={"scanOnPush": True},
                    tags=[{"Key": "created-by", "Value": "mfc"}], **_registry_id(account)) is not None
    if not created and _call(f"get_lifecycle_policy {name}", client.get_lifecycle_policy,
                             allow=("LifecyclePolicyNotFoundException",), repositoryName=name,
                             **_registry_id(account)) is not None:
        return False
    _call(f"put_lifecycle_policy {name}", client.put_lifecycle_policy, repositoryName=name,
          lifecyclePolicyText=policy, **_registry_id(account))
    return created


@dataclass(frozen=True)
class Credentials:
    """What ``docker login`` needs for an ECR registry (valid for 12 hours)."""

    username: str
    password: str
    registry: str


def decode_token(token: str, endpoint: str) -> Credentials:
    """``user:password`` from an ECR authorization token (base64), for ``endpoint``'s host."""
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, ValueError):
        raise MfcError("ECR returned an authorization token that is not base64") from None
    username, sep, password = text.partition(":")
    if not sep or not username or not password:
        raise MfcError("ECR returned an authorization token without user:password")
    return Credentials(username, password, endpoint)


def login_credentials(client: Any, account: str | None = None) -> Credentials:
    """Docker login credentials for the registry of ``account`` (the caller's by default)."""
    kwargs: dict[str, Any] = {"registryIds": [account]} if account else {}
    answer = _call("get_authorization_token", client.get_authorization_token, **kwargs) or {}
    data = answer.get("authorizationData") or []
    if not data:
        raise MfcError("ECR get_authorization_token returned no authorization data")
    return decode_token(data[0]["authorizationToken"], data[0].get("proxyEndpoint") or "")


def already_pushed(client: Any, name: str, tag: str, account: str | None = None) -> str | None:
    """The digest of ``name:tag`` in ECR, or None when the repository or the tag is not there."""
    found = _call(f"describe_images {name}:{tag}", client.describe_images,
                  allow=("ImageNotFoundException", "RepositoryNotFoundException"),
                  repositoryName=name, imageIds=[{"imageTag": tag}], **_registry_id(account))
    details = (found or {}).get("imageDetails") or []
    return str(details[0].get("imageDigest") or "") if details else None
