"""Pieces the API's route modules share: path parts checked by the pathspec grammar, the
service's state, and a run as readers see it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request

from mfc.pathspec import check_attempt, check_part
from mfc.service.db import Database
from mfc.service.runs import ExecutionStatus


def parts(flow: str | None = None, run_id: str | None = None, step: str | None = None,
          task_id: str | None = None) -> None:
    """Check the path parts given (InvalidPathspec, answered 400, for a bad one)."""
    for value, kind in ((flow, "flow"), (run_id, "run id"), (step, "step"), (task_id, "task id")):
        if value is not None:
            check_part(value, kind)


def attempt_number(value: str) -> int:
    """An attempt from the path: a non-negative integer (400 otherwise)."""
    number = check_attempt(value)
    if number > 1_000_000:
        raise HTTPException(400, f"attempt {number} is out of range")
    return number


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def merged(request: Request, row: Mapping[str, Any], activity: Mapping[int, float]) -> dict[str, Any]:
    """The run of a row as readers see it (status from its facts, asking Step Functions where
    an execution drives it and the service has an AWS config)."""
    executions: ExecutionStatus = request.app.state.executions
    return executions.merged(row, time.time(), activity.get(int(row["id"])))
