"""How a Step Functions run's execution stands, for readers (``mfc runs``, ``logs``, ``dump``, the
client, resume): :func:`execution_status` is the ``execution_probe`` that
:func:`mfc.stores.provider.open_metadata` installs, asked only for a run that an execution drives
and that has no final status. Tasks never ask.

One ``DescribeExecution`` per execution and process: an ended execution never changes, so its
answer is kept; a running one is asked again after ``RUNNING_TTL`` seconds. Step Functions is
asked in the execution's own region (from its ARN) at the endpoint the reader's config names.
Any failure to ask (no credentials, no network, no permission, no such execution) is None: the
run reads ``running``, as before anyone asked. After a failure that is not Step Functions'
answer (credentials, network), that endpoint is left alone for ``RETRY_AFTER`` seconds, so a
listing of many runs waits for one timeout, not one per run.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

RUNNING_TTL = 2.0
RETRY_AFTER = 30.0
TIMEOUTS = {"connect_timeout": 3, "read_timeout": 5}

Where = tuple[str | None, str | None]  # (region, endpoint URL)

_answers: dict[tuple[Where, str], tuple[float, dict[str, Any] | None]] = {}
_unreachable: dict[Where, float] = {}
_clients: dict[Where, Any] = {}
_LOCK = threading.Lock()


def execution_status(driver: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """The ``execution`` fact of :func:`mfc.stores.runstatus.run_state` for a run record's
    ``driver`` (``{"kind": "sfn", "execution": ARN, ...}``): ``{"status", "stopped_at" (epoch or
    None), "error", "cause"}``, or None when Step Functions cannot be asked."""
    arn = driver.get("execution")
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    where = _where(arn, config)
    now = time.monotonic()
    cached = _answers.get((where, arn))
    if cached is not None and (now < cached[0] or (cached[1] is not None and cached[1]["status"] != "RUNNING")):
        return cached[1]
    if now < _unreachable.get(where, 0.0):
        return None
    from botocore.exceptions import ClientError

    try:
        described = _client(where).describe_execution(executionArn=arn)
    except ClientError:  # Step Functions' answer (no such execution, access denied): this ARN only
        _answers[(where, arn)] = (now + RETRY_AFTER, None)
        return None
    except Exception:  # noqa: BLE001 - no credentials, unreachable, timed out: the whole endpoint
        _unreachable[where] = time.monotonic() + RETRY_AFTER
        return None
    answer = execution_fact(described)
    _answers[(where, arn)] = (now + RUNNING_TTL, answer)
    return answer


def execution_fact(described: dict[str, Any]) -> dict[str, Any]:
    """The ``execution`` fact from a ``DescribeExecution`` answer."""
    stopped = described.get("stopDate")
    return {"status": described.get("status"), "stopped_at": round(stopped.timestamp(), 3) if stopped else None,
            "error": described.get("error"), "cause": described.get("cause")}


def forget() -> None:
    """Drop every kept answer, client and back-off (a new sandbox, a test)."""
    with _LOCK:
        _answers.clear()
        _unreachable.clear()
        _clients.clear()


def _after_fork() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # another thread of the parent may have held it at the fork
    _clients.clear()  # their connections belong to the parent


os.register_at_fork(after_in_child=_after_fork)


def _where(arn: str, config: Any) -> Where:
    from mfc.aws import endpoint_for

    parts = arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else config["aws_region"]
    return region, endpoint_for("stepfunctions", config)


def _client(where: Where) -> Any:
    with _LOCK:
        found = _clients.get(where)
        if found is None:
            from botocore.config import Config as BotoConfig

            from mfc.aws import session_client

            found = _clients[where] = session_client(
                "stepfunctions", where[0], where[1],
                BotoConfig(retries={"max_attempts": 2, "mode": "standard"}, **TIMEOUTS))
        return found
