"""Routes of deployments (flows deployed to Step Functions, as ``mfc sfn create`` records them):
record, list with their schedules' next fire times, delete, trigger a run, and terminate a run
an execution drives. Triggering and terminating reach AWS with the service's own config
(``app.state.config``); without one they answer 503."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import delete, select

from mfc.exceptions import MfcError
from mfc.service import store
from mfc.service.api_common import db_of, parts
from mfc.service.auth import Caller, reader, writer
from mfc.service.models import Deployment, Trigger
from mfc.service.runs import driver_of
from mfc.service.schema import deployments
from mfc.stores.runstatus import SFN_DRIVER

router = APIRouter()
NEXT_FIRES = 3
MAX_NAME = 80  # Step Functions' limit on a state machine's name


def _name(name: str) -> str:
    if not name or len(name) > MAX_NAME or not all(c.isalnum() or c in "-_" for c in name):
        raise HTTPException(400, f"deployment name {name[:80]!r} must be 1 to {MAX_NAME} letters, digits, '-' or '_'")
    return name


def next_fires(schedule: dict[str, Any] | None, after: datetime | None = None) -> list[str]:
    """The next fire times (ISO 8601, UTC) of an enabled schedule; [] for none or a disabled one."""
    if not schedule or not schedule.get("enabled", True) or not schedule.get("expression"):
        return []
    from mfc.events.expressions import parse_schedule

    try:
        fires = parse_schedule(schedule["expression"]).next_fires(after or datetime.now(timezone.utc), NEXT_FIRES,
                                                                  schedule.get("timezone"))
    except MfcError:
        return []
    return [f.isoformat() for f in fires]


def _shown(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["next_fires"] = next_fires(data["schedule"])
    return data


@router.put("/deployments/{name}")
def put_deployment(name: str, body: Deployment, request: Request, _: Caller = Depends(writer)) -> dict[str, Any]:
    """Record (or replace) a deployment; its schedule's expression and zone are checked."""
    _name(name)
    schedule = body.schedule.model_dump() if body.schedule is not None else None
    if schedule is not None:
        from mfc.events.expressions import check_timezone, parse_schedule

        schedule["expression"] = parse_schedule(schedule["expression"]).expression
        if schedule.get("timezone"):
            check_timezone(schedule["timezone"])
    values: dict[str, Any] = {"flow": body.flow, "state_machine_arn": body.state_machine_arn, "region": body.region,
              "schedule": schedule, "triggers": body.triggers, "parameters": body.parameters, "info": body.info,
              "updated_at": time.time()}
    if schedule is None:
        from sqlalchemy import null

        values["schedule"] = null()
    db = db_of(request)
    with db.write() as conn:
        created = store.insert_ignore(conn, deployments, {**values, "name": name, "created_at": values["updated_at"]})
        if not created:
            conn.execute(deployments.update().where(deployments.c.name == name).values(**values))
        row = conn.execute(select(deployments).where(deployments.c.name == name)).mappings().one()
    return _shown(row)


@router.get("/deployments")
def list_deployments(request: Request, flow: str | None = Query(None), _: Caller = Depends(reader)) -> dict[str, Any]:
    query = select(deployments).order_by(deployments.c.name)
    if flow is not None:
        parts(flow)
        query = query.where(deployments.c.flow == flow)
    with db_of(request).read() as conn:
        return {"deployments": [_shown(row) for row in conn.execute(query).mappings()]}


def _deployment(request: Request, name: str) -> dict[str, Any]:
    _name(name)
    with db_of(request).read() as conn:
        row = conn.execute(select(deployments).where(deployments.c.name == name)).mappings().first()
    if row is None:
        raise store.NotFound(f"no deployment {name}")
    return _shown(row)


@router.get("/deployments/{name}")
def get_deployment(name: str, request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    return _deployment(request, name)


@router.delete("/deployments/{name}", status_code=204)
def delete_deployment(name: str, request: Request, _: Caller = Depends(writer)) -> Response:
    _name(name)
    with db_of(request).write() as conn:
        gone = conn.execute(delete(deployments).where(deployments.c.name == name)).rowcount
    if not gone:
        raise store.NotFound(f"no deployment {name}")
    return Response(status_code=204)


def _aws(request: Request) -> Any:
    config = request.app.state.config
    if config is None:
        raise HTTPException(503, "this service has no AWS configuration; start it with one to trigger "
                                 "or terminate Step Functions runs")
    return config


def execution_input(parameters: dict[str, Any], known: dict[str, Any]) -> str:
    """The input ``mfc sfn trigger`` sends (``{"parameters": {name: value as text}}``), for
    parameters the deployment knows (when it records any)."""
    from mfc.sfn.executions import INPUT_LIMIT

    given: dict[str, str] = {}
    for name, value in parameters.items():
        if not name.isidentifier() or (known and name not in known):
            raise HTTPException(400, f"parameter {name[:80]!r} is not a parameter of this flow"
                                     + (f" (known: {', '.join(sorted(known))})" if known else ""))
        given[name] = ("true" if value else "false") if isinstance(value, bool) else (
            value if isinstance(value, str) else json.dumps(value))
    text = json.dumps({"parameters": given}, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > INPUT_LIMIT:
        raise HTTPException(413, f"the execution input takes {len(text.encode())} bytes, more than Step Functions' "
                                 f"{INPUT_LIMIT}")
    return text


@router.post("/deployments/{name}/trigger")
def trigger(name: str, body: Trigger, request: Request, _: Caller = Depends(writer)) -> dict[str, Any]:
    """Start an execution of the deployment's state machine with these parameters."""
    found = _deployment(request, name)
    config = _aws(request)
    text = execution_input(body.parameters, found["parameters"] or {})
    from mfc.sfn.executions import start

    try:
        arn, run_id = start(config, found["state_machine_arn"], text)
    except MfcError as exc:
        raise HTTPException(502, f"Step Functions refused: {exc}") from None
    return {"execution_arn": arn, "run_id": run_id}


def _queues(machine_arn: str, config: Any) -> list[str]:
    """The Batch queues the state machine's states submit to (where its jobs may still run)."""
    from mfc.sfn.deploy import _all_states, sfn_client

    definition = json.loads(sfn_client(config).describe_state_machine(stateMachineArn=machine_arn)["definition"])
    return sorted({s["Parameters"]["JobQueue"] for s in _all_states(definition).values()
                   if isinstance(s.get("Parameters"), dict) and "JobQueue" in s["Parameters"]})


@router.post("/flows/{flow}/runs/{run_id}/terminate")
def terminate(flow: str, run_id: str, request: Request, _: Caller = Depends(writer)) -> dict[str, Any]:
    """Stop the execution driving a Step Functions run and its Batch jobs, and record the run failed."""
    parts(flow, run_id)
    row = store.run_row(db_of(request), flow, run_id)
    if row is None:
        raise store.NotFound(f"no run {flow}/{run_id}")
    driver = driver_of(row) or {}
    arn = driver.get("execution") if driver.get("kind") == SFN_DRIVER else None
    if not isinstance(arn, str) or ":execution:" not in arn:
        raise store.Conflict(f"run {flow}/{run_id} is not driven by a Step Functions execution")
    if row["final"] is not None:
        raise store.Conflict(f"run {flow}/{run_id} has ended already: {row['final'].get('status')}")
    config = _aws(request)
    from mfc.sfn.executions import describe
    from mfc.sfn.executions import terminate as stop

    try:
        described = describe(config, arn)
        if described["status"] != "RUNNING":
            raise store.Conflict(f"run {flow}/{run_id} has ended already: {described['status']}")
        machine = arn.replace(":execution:", ":stateMachine:", 1).rsplit(":", 1)[0]
        jobs = stop(config, arn, run_id, _queues(machine, config))
    except MfcError as exc:
        raise HTTPException(502, f"Step Functions refused: {exc}") from None
    error = f"terminated through the metadata service ({len(jobs)} Batch jobs stopped)"
    store.write_final(db_of(request), flow, run_id, {"status": "failed", "finished_at": store.now(), "error": error},
                      if_absent=True)
    return {"terminated": True, "jobs": jobs}
