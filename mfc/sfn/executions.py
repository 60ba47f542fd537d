"""Executions of a deployed flow: start one (its run id is ``sfn-<execution name>``), list them,
stop one with its Batch jobs, and read a run's status from its execution.

Parameters are parsed and checked here with the flow's own classes and the messages of ``mfc
run`` before anything starts; the execution input carries them as given (see
:mod:`mfc.sfn.runstart`), and the start state parses them again in the deployed code.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from mfc.exceptions import MfcError
from mfc.runner.batch_setup import access_error
from mfc.sfn.deploy import sfn_client

RUN_PREFIX = "sfn-"
INPUT_LIMIT = 256 * 1024  # Step Functions refuses a larger execution input
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def run_id_for(execution_name: str) -> str:
    return RUN_PREFIX + execution_name


def execution_name_of(run_id: str) -> str | None:
    return run_id[len(RUN_PREFIX):] if run_id.startswith(RUN_PREFIX) else None


def new_execution_name() -> str:
    """A sortable, unique execution name: ``<UTC time>-<random>``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def execution_input(flow_cls: type, param_args: list[str], user: str, resume: dict[str, Any] | None = None) -> str:
    """The execution input for ``--name value`` arguments (checked as ``mfc run`` checks them),
    or for a resume; MfcError when it exceeds Step Functions' 256 KiB."""
    from mfc.parameters import flow_parameters, parse_parameter_args

    params = flow_parameters(flow_cls)
    parse_parameter_args(params, param_args, flow_cls.__name__, user)  # the same checks and messages
    given: dict[str, Any] = {}
    by_option = {o: p for p in params.values() for o in {p.name, p.name.replace("_", "-")}}
    i = 0
    while i < len(param_args):
        option, eq, value = param_args[i][2:].partition("=")
        negated = option.startswith("no-") and option[3:] in by_option
        param = by_option[option[3:] if negated else option]
        if param.is_flag and not eq:
            following = param_args[i + 1].lower() if i + 1 < len(param_args) else ""
            if not negated and following in ("true", "false", "1", "0", "yes", "no"):
                value, i = following, i + 1
            else:
                value = "false" if negated else "true"
        elif not eq:
            value, i = param_args[i + 1], i + 1
        given[param.name] = value
        i += 1
    data: dict[str, Any] = {"parameters": given}
    if resume is not None:
        data = {"resume": resume}
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > INPUT_LIMIT:
        raise MfcError(f"the execution input takes {len(text.encode())} bytes, more than Step Functions' "
                       f"{INPUT_LIMIT} (256 KiB)", hint="pass large values as files in S3 and their URLs as parameters")
    return text


def start(config: Any, machine_arn: str, input_text: str, name: str | None = None) -> tuple[str, str]:
    """Start an execution; returns ``(execution ARN, run id)``."""
    name = name or new_execution_name()
    try:
        arn = sfn_client(config).start_execution(stateMachineArn=machine_arn, name=name, input=input_text)["executionArn"]
    except Exception as exc:  # noqa: BLE001
        raise access_error(exc, config, "AWS Step Functions") from None
    return str(arn), run_id_for(name)


def list_executions(config: Any, machine_arn: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The state machine's executions, newest first."""
    sfn = sfn_client(config)
    found: list[dict[str, Any]] = []
    try:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn):
            found.extend(page.get("executions") or [])
            if limit is not None and len(found) >= limit:
                break
    except Exception as exc:  # noqa: BLE001
        raise access_error(exc, config, "AWS Step Functions") from None
    found.sort(key=lambda e: e.get("startDate") or 0, reverse=True)
    return found[:limit] if limit is not None else found


def execution_arn(machine_arn: str, run_id: str) -> str:
    """The ARN of the execution behind ``run_id`` (``sfn-<name>``) of a state machine."""
    name = execution_name_of(run_id)
    if name is None:
        raise MfcError(f"run {run_id} is not a Step Functions run (their ids start with {RUN_PREFIX})")
    return machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def describe(config: Any, arn: str) -> dict[str, Any]:
    sfn = sfn_client(config)
    try:
        return dict(sfn.describe_execution(executionArn=arn))
    except sfn.exceptions.ExecutionDoesNotExist:
        raise MfcError(f"no execution {arn.rsplit(':', 1)[-1]} of {arn.split(':')[-2]}") from None
    except Exception as exc:  # noqa: BLE001
        raise access_error(exc, config, "AWS Step Functions") from None


def terminate(config: Any, arn: str, run_id: str, queues: list[str]) -> list[str]:
    """Stop the execution and terminate its Batch jobs still queued or running (found by their
    ``mfc:run`` tag in ``queues``); returns the job ids terminated."""
    from mfc.runner.batch_setup import quick_client

    sfn = sfn_client(config)
    try:
        sfn.stop_execution(executionArn=arn, error="mfc.Terminated", cause=f"mfc sfn terminate {run_id}")
    except Exception as exc:  # noqa: BLE001
        raise access_error(exc, config, "AWS Step Functions") from None
    batch = quick_client("batch", config)
    stopped = []
    for queue in sorted(set(queues)):
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
            ids = [j["jobId"] for j in batch.list_jobs(jobQueue=queue, jobStatus=status).get("jobSummaryList") or []]
            for i in range(0, len(ids), 100):
                for job in batch.describe_jobs(jobs=ids[i:i + 100]).get("jobs") or []:
                    if (job.get("tags") or {}).get("mfc:run") == run_id:
                        batch.terminate_job(jobId=job["jobId"], reason=f"mfc sfn terminate {run_id}")
                        stopped.append(job["jobId"])
    return stopped
