"""Routes of flows and runs: create, list, read, facts, final status, lease, tags, versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from mfc.service import store
from mfc.service.api_common import db_of, merged, parts
from mfc.service.auth import Caller, reader, writer
from mfc.service.models import Final, Lease, NewRun, TagChange
from mfc.stores.runstatus import STATUSES
from mfc.tags import check_tag, check_tags

router = APIRouter()
RUN = "/flows/{flow}/runs/{run_id}"
MAX_IDS = 1000


@router.get("/whoami")
def whoami(caller: Caller = Depends(reader)) -> dict[str, Any]:
    return {"token_id": caller.token_id, "read_only": caller.read_only}


@router.get("/version")
def runs_version(request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    """The largest version of any run: it grows with every change (poll it for live updates)."""
    return {"runs_version": store.versions(db_of(request))}


@router.get("/flows")
def flows(request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    return {"flows": store.flows(db_of(request))}


@router.post("/flows/{flow}/runs", status_code=201)
def create_run(flow: str, body: NewRun, request: Request, _: Caller = Depends(writer)) -> Any:
    """Record a run (a new id when ``run_id`` is null); 200 with created=false when it exists
    with the same content, 409 listing the fields that differ otherwise."""
    parts(flow)
    if body.info.get("tags") is not None:
        check_tags(body.info["tags"] if isinstance(body.info["tags"], list) else [body.info["tags"]])
    run_id, created = store.create_run(db_of(request), flow, body.info, body.run_id)
    return JSONResponse({"run_id": run_id, "created": created}, status_code=201 if created else 200)


@router.get("/flows/{flow}/run-ids")
def run_ids(flow: str, request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    parts(flow)
    return {"run_ids": store.run_ids(db_of(request), flow)}


@router.get("/flows/{flow}/runs")
def list_runs(flow: str, request: Request, _: Caller = Depends(reader), ids: str | None = None,
              limit: int = Query(50, ge=1, le=1000), before: str | None = None,
              status: str | None = None, tag: str | None = None) -> dict[str, Any]:
    """The runs named by ``ids`` (comma-separated, in that order; null for an unknown one), or a
    page of the flow's runs, newest first, older than ``before``, with that ``status`` and
    ``tag``. The next page starts before the last run of this one."""
    parts(flow)
    db = db_of(request)
    if ids is not None:
        wanted = [i for i in ids.split(",") if i][:MAX_IDS]
        for run_id in wanted:
            parts(run_id=run_id)
        by_id, by_pk = store.rows_by_ids(db, flow, wanted)
        return {"runs": [{"run_id": i, "run": merged(request, by_id[i], by_pk) if i in by_id else None}
                         for i in wanted]}
    if before is not None:
        parts(run_id=before)
    if status is not None and status not in STATUSES:
        raise HTTPException(400, f"status {status[:40]!r} is not one of {', '.join(STATUSES)}")
    if tag is not None:
        check_tag(tag)
    found: list[dict[str, Any]] = []
    final = status if status in ("succeeded", "failed", "interrupted") else ("none" if status else None)
    batch = limit if status is None and tag is None else max(limit, 200)
    while len(found) < limit:
        rows, activity = store.page(db, flow, batch, before, final)
        for row in rows:
            run = merged(request, row, activity)
            if (status is None or run["status"] == status) and (tag is None or tag in run["tags"]):
                found.append({"run_id": row["run_id"], "run": run})
        if len(rows) < batch:
            break
        before = rows[-1]["run_id"]
    return {"runs": found[:limit]}


@router.get(RUN)
def get_run(flow: str, run_id: str, request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    parts(flow, run_id)
    rows, activity = store.rows_by_ids(db_of(request), flow, [run_id])
    if run_id not in rows:
        raise store.NotFound(f"no run {flow}/{run_id}")
    return merged(request, rows[run_id], activity)


@router.get(RUN + "/facts")
def facts(flow: str, run_id: str, request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    """The run's facts as stored: its record, final status record and lease (null where none)."""
    parts(flow, run_id)
    row = store.run_row(db_of(request), flow, run_id)
    if row is None:
        return {"run": None, "status": None, "lease": None}
    return {"run": row["info"], "status": row["final"], "lease": row["lease"]}


@router.put(RUN + "/final")
def put_final(flow: str, run_id: str, body: Final, request: Request, _: Caller = Depends(writer)) -> dict[str, Any]:
    """Record the run's final status (with ``if_absent``: only when it has none)."""
    parts(flow, run_id)
    record = body.model_dump(exclude={"if_absent"})
    if record.get("finished_at") is None:
        record["finished_at"] = store.now()
    return {"written": store.write_final(db_of(request), flow, run_id, record, body.if_absent)}


@router.put(RUN + "/lease", status_code=204)
def put_lease(flow: str, run_id: str, body: Lease, request: Request, _: Caller = Depends(writer)) -> Response:
    parts(flow, run_id)
    store.write_lease(db_of(request), flow, run_id, body.model_dump())
    return Response(status_code=204)


@router.delete(RUN + "/lease", status_code=204)
def drop_lease(flow: str, run_id: str, request: Request, _: Caller = Depends(writer)) -> Response:
    parts(flow, run_id)
    store.write_lease(db_of(request), flow, run_id, None)
    return Response(status_code=204)


@router.post(RUN + "/tags")
def tags(flow: str, run_id: str, body: TagChange, request: Request, _: Caller = Depends(writer)) -> dict[str, Any]:
    """Add and remove user tags; with ``expect``, only if the tags are those now (409 otherwise)."""
    parts(flow, run_id)
    for tag in (*body.add, *body.remove):
        check_tag(tag)
    return {"tags": store.update_tags(db_of(request), flow, run_id, body.add, body.remove, body.expect)}


@router.get(RUN + "/version")
def run_version(flow: str, run_id: str, request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    parts(flow, run_id)
    version = store.versions(db_of(request), flow, run_id)
    if not version:
        raise store.NotFound(f"no run {flow}/{run_id}")
    return {"version": version}
