"""The UI's pages: flows, a flow's runs, a run, a task, deployments. Server-rendered; a page
asked for with ``?fragment=main`` answers only its ``<main>`` (what the live updates swap in).

Statuses come from the service's merged run (:mod:`mfc.service.runs`), never from here."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.engine import Row
from starlette.responses import Response

from mfc.pathspec import is_valid
from mfc.service.auth import Caller
from mfc.service.ui import queries, views
from mfc.service.ui.logs import log_reader
from mfc.service.ui.render import render, urlpart
from mfc.service.ui.session import to_login, viewer
from mfc.stores.runstatus import FINAL_STATUSES, STATUSES

router = APIRouter(include_in_schema=False)

SCAN_CHUNK = 200  # rows read at a time while filtering by a status or tag the database cannot test
SCAN_LIMIT = 20  # chunks at most per page: a filter that matches almost nothing stops looking


def merger(request: Request) -> views.Merge:
    """The merged run of a row, asking Step Functions about a run it drives where the service can."""
    executions = getattr(request.app.state, "executions", None)

    def merge(row: Row, activity: float | None) -> dict[str, Any]:
        from mfc.service.runs import merged_run

        mapping = cast(Mapping[str, Any], row._mapping)
        now = time.time()
        if executions is not None:
            return executions.merged(mapping, now, activity)
        return merged_run(mapping, now, activity)
    return merge


def not_found(request: Request, who: Caller, what: str) -> Response:
    """The 404 page, saying what the service does not have."""
    return render("error.html", {"viewer": who, "code": 404, "title": "Not found", "message": what},
                  status_code=404)


def page(name: str, request: Request, who: Caller, context: dict[str, Any]) -> Response:
    """The whole page, or only its main part for ``?fragment=main``."""
    fragment = request.query_params.get("fragment") == "main"
    return render(name.replace(".html", "_main.html") if fragment else name, {"viewer": who, **context})


def _guarded(request: Request) -> Caller | Response:
    who = viewer(request)
    return who if who is not None else to_login(request)


def _bad_parts(**parts: str) -> str | None:
    kinds = {"flow": "flow", "run_id": "run id", "step": "step", "task_id": "task id"}
    for key, value in parts.items():
        if not is_valid(value, kinds[key]):
            return f"no {kinds[key]} {value!r}"
    return None


@router.get("/")
def flows_page(request: Request) -> Response:
    """Every flow: its number of runs and its newest run with its status."""
    who = _guarded(request)
    if isinstance(who, Response):
        return who
    merge = merger(request)
    with request.app.state.db.read() as conn:
        flows = [{"name": name, "runs": n, "last": merge(row, None) | {"run_id": row.run_id} if row else None}
                 for name, n, row in queries.flows(conn)]
    return render("flows.html", {"viewer": who, "flows": flows})


def _runs(conn: Any, flow: str, merge: views.Merge, status: str | None, tag: str | None,
          before: tuple[float, int] | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a flow's runs (merged), and the run id the next page starts before (None: no
    more). A status or tag filter reads chunks until the page is full, or stops looking after
    :data:`SCAN_LIMIT` chunks and lets the next page go on from where it stopped."""
    exact = status is None and tag is None
    found: list[tuple[Row, dict[str, Any]]] = []
    scanned: Row | None = None
    exhausted = False
    for _ in range(1 if exact else SCAN_LIMIT):
        size = views.PAGE_SIZE + 1 if exact else SCAN_CHUNK
        rows = queries.runs_chunk(conn, flow, size, before, status if status in FINAL_STATUSES else None,
                                  status in ("running", "crashed"), tag)
        activity = queries.last_activity(conn, [r.id for r in rows if r.final is None])
        for row in rows:
            run = merge(row, activity.get(row.id))
            if (status is None or run["status"] == status) and (tag is None or tag in run["tags"]):
                found.append((row, run))
        exhausted = len(rows) < size
        if rows:
            scanned = rows[-1]
            before = (float(scanned.created_at), int(scanned.id))
        if len(found) > views.PAGE_SIZE or exhausted:
            break
    shown = found[:views.PAGE_SIZE]
    if len(found) > views.PAGE_SIZE:
        following: str | None = shown[-1][0].run_id
    else:
        following = None if exhausted or scanned is None else scanned.run_id
    return [run | {"run_id": row.run_id} for row, run in shown], following


def _tag_problem(tag: str | None) -> str | None:
    """Why a tag filter cannot match any run (it is not a tag mfc would accept), None if it can."""
    from mfc.exceptions import MfcError
    from mfc.tags import check_tag

    if tag is None:
        return None
    try:
        check_tag(tag)
    except MfcError as exc:
        return str(exc)
    return None


@router.get("/flows/{flow}")
def runs_page(request: Request, flow: str, status: str | None = None, tag: str | None = None,
              before: str | None = None) -> Response:
    """A flow's runs, newest first, 50 a page, filtered by status or tag."""
    who = _guarded(request)
    if isinstance(who, Response):
        return who
    status = status if status in STATUSES else None
    tag = tag.strip() or None if tag else None
    with request.app.state.db.read() as conn:
        if _bad_parts(flow=flow) or not queries.flow_exists(conn, flow):
            return not_found(request, who, f"The service has no runs of a flow named {flow!r}.")
        start = queries.position(conn, flow, before) if before and is_valid(before, "run id") else None
        problem = _tag_problem(tag)
        runs, more = ([], None) if problem else _runs(conn, flow, merger(request), status, tag, start)
        version = ":".join(str(x) for x in queries.flow_version(conn, flow))
    older = None
    if more is not None:
        query = {k: v for k, v in (("status", status), ("tag", tag), ("before", more)) if v}
        older = f"/flows/{urlpart(flow)}?{urlencode(query)}"
    return page("runs.html", request, who, {"flow": flow, "runs": runs, "older": older, "status": status,
                                            "tag": tag, "before": before, "statuses": STATUSES,
                                            "flow_version": version, "problem": problem})


@router.get("/flows/{flow}/runs/{run_id}")
def run_page(request: Request, flow: str, run_id: str) -> Response:
    """A run: summary, DAG, timeline and steps."""
    who = _guarded(request)
    if isinstance(who, Response):
        return who
    with request.app.state.db.read() as conn:
        row = None if _bad_parts(flow=flow, run_id=run_id) else queries.run_row(conn, flow, run_id)
        if row is None:
            return not_found(request, who, f"The service has no run {flow}/{run_id}.")
        context = views.run_context(conn, row, merger(request), time.time(), not who.read_only)
    return page("run.html", request, who, {"flow": flow, "version": row.version, **context})


def _card_url(flow: str, run_id: str) -> Callable[[Row, str], str]:
    def url(attempt: Row, card_id: str) -> str:
        return (f"/api/v1/flows/{urlpart(flow)}/runs/{urlpart(run_id)}/steps/{urlpart(attempt.step)}"
                f"/tasks/{urlpart(attempt.task_id)}/attempts/{attempt.attempt}/cards/{urlpart(card_id)}")
    return url


@router.get("/flows/{flow}/runs/{run_id}/{step}/{task_id}")
def task_page(request: Request, flow: str, run_id: str, step: str, task_id: str,
              attempt: int | None = None) -> Response:
    """A task: foreach item, attempts, and one attempt's logs, artifacts and cards."""
    who = _guarded(request)
    if isinstance(who, Response):
        return who
    with request.app.state.db.read() as conn:
        row = None if _bad_parts(flow=flow, run_id=run_id, step=step, task_id=task_id) \
            else queries.run_row(conn, flow, run_id)
        attempts = queries.task_attempts(conn, row.id, step, task_id) if row is not None else []
        if row is None or not attempts:
            return not_found(request, who, f"The service has no task {flow}/{run_id}/{step}/{task_id}.")
        context = views.task_context(conn, row, attempts, merger(request), time.time(), attempt,
                                     log_reader(request, flow), _card_url(flow, run_id))
    return page("task.html", request, who, {"flow": flow, "step": step, "task_id": task_id,
                                            "version": row.version, **context})


@router.get("/deployments")
def deployments_page(request: Request) -> Response:
    """The deployed flows, their schedules and triggers; a Trigger button for a token that may write."""
    who = _guarded(request)
    if isinstance(who, Response):
        return who
    with request.app.state.db.read() as conn:
        deployments = views.deployments_context(conn, time.time())
    return render("deployments.html", {"viewer": who, "deployments": deployments, "can_write": not who.read_only})
