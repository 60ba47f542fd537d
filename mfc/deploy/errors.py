"""AWS errors of deploying as one :class:`MfcError` line: a refused permission names the action."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mfc.deploy.pure import denied_action
from mfc.exceptions import MfcError

# A JSON error in a response botocore expected as XML (moto answers CloudFormation so when a
# resource fails): its type and message are the error.
_JSON_ERROR = re.compile(r'"__type":\s*"([^"]+)",\s*"message":\s*"([^"]*)"')
PERMISSION_HINT = "ask your AWS administrator for it, or use credentials (AWS_PROFILE) that have it"


def one_line(exc: BaseException, config: Any, what: str, service: str) -> MfcError:
    """The MfcError for a failed call to ``what`` (e.g. "AWS CloudFormation"; ``service``: its IAM
    prefix, "cloudformation")."""
    from mfc.runner.batch_setup import access_error

    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        err = response["Error"]
        model = getattr(exc, "operation_name", "") or ""
        action = denied_action(str(err.get("Code", "")), str(err.get("Message", "")), service, model)
        if action is not None:
            return MfcError(f"not allowed to {action} ({what} said {err.get('Code')})", hint=PERMISSION_HINT)
    found = _JSON_ERROR.search(str(exc)) if type(exc).__name__ == "ResponseParserError" else None
    if found:
        return MfcError(f"{what} failed: {found.group(1)}: {found.group(2)}")
    return access_error(exc, config, what)


@contextmanager
def calling(config: Any, what: str, service: str) -> Iterator[None]:
    """Turn a failed AWS call inside the block into one MfcError line."""
    try:
        yield
    except MfcError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line
        raise one_line(exc, config, what, service) from None
