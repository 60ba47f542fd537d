"""Live updates: server-sent events a page listens to, sending ``change`` when what it shows has
changed, so its script re-fetches its main fragment.

A run's stream polls the run's ``version`` column (one indexed row, every :data:`POLL_SECONDS`)
and, every :data:`STATUS_SECONDS`, its merged status too: a crashed run's lease expires without
any write, and the page must stop saying "running" then. Once the run has ended the stream sends
``end`` and closes. A flow's stream polls its runs' count and latest update. The database is read
in worker threads, one short query at a time, and the generator ends when the browser goes away
(Starlette cancels it on disconnect; it also checks between polls), so a closed tab leaves
nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from anyio import to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from mfc.pathspec import is_valid
from mfc.service.ui import queries
from mfc.service.ui.pages import merger
from mfc.service.ui.session import viewer

router = APIRouter(include_in_schema=False)

POLL_SECONDS = 0.5
STATUS_SECONDS = 5.0
KEEPALIVE_SECONDS = 15.0
MAX_SECONDS = 3600.0  # a stream lives an hour at most; EventSource reconnects by itself
_open = {"streams": 0}


def open_streams() -> int:
    """How many event streams this process is serving now (a closed tab's is gone within a poll)."""
    return _open["streams"]


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


def _headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def _stream(request: Request, look: Callable[[], tuple[Any, bool]], since: str | None,
                  clock: Callable[[], float] = time.monotonic) -> AsyncIterator[bytes]:
    """Send ``change`` each time ``look()``'s first value changes (and at once when it differs
    from ``since``, what the page was rendered from), ``end`` and stop once its second is True.
    A token revoked or expired meanwhile ends the stream with ``denied``."""
    _open["streams"] += 1
    try:
        started = last_sent = checked = clock()
        yield b"retry: 2000\n\n"
        seen: Any = since
        while clock() - started < MAX_SECONDS:
            if await request.is_disconnected():
                return
            if clock() - checked > STATUS_SECONDS:
                checked = clock()
                if await to_thread.run_sync(viewer, request) is None:
                    yield _event("denied", "log in again")
                    return
            state, ended = await to_thread.run_sync(look)
            if str(state) != str(seen):
                seen = state
                last_sent = clock()
                yield _event("end" if ended else "change", str(state))
            if ended:
                return
            if clock() - last_sent > KEEPALIVE_SECONDS:
                last_sent = clock()
                yield b": keepalive\n\n"
            await anyio.sleep(POLL_SECONDS)
    finally:
        _open["streams"] -= 1


@router.get("/events/runs/{flow}/{run_id}")
def run_events(request: Request, flow: str, run_id: str, v: str | None = None) -> Response:
    """The events of one run: ``change`` when its version or status changes, ``end`` when it ended."""
    if viewer(request) is None:
        return Response("log in first", status_code=401)
    if not (is_valid(flow, "flow") and is_valid(run_id, "run id")):
        return Response("no such run", status_code=404)
    db = request.app.state.db
    merge = merger(request)
    checked: dict[str, Any] = {"at": 0.0, "status": None, "version": None}

    def look() -> tuple[Any, bool]:
        with db.read() as conn:
            version = queries.run_version(conn, flow, run_id)
            if version is None:
                return "gone", True
            if time.monotonic() - float(checked["at"] or 0) > STATUS_SECONDS or version != checked.get("version"):
                row = queries.run_row(conn, flow, run_id)
                activity = queries.last_activity(conn, [row.id]).get(row.id) if row is not None else None
                checked.update(at=time.monotonic(), version=version,
                               status=merge(row, activity)["status"] if row is not None else "gone")
        status = checked["status"]
        return f"{version}:{status}", status != "running"
    return StreamingResponse(_stream(request, look, v), media_type="text/event-stream", headers=_headers())


@router.get("/events/flows/{flow}")
def flow_events(request: Request, flow: str, v: str | None = None) -> Response:
    """The events of a flow's runs page: ``change`` when a run is added or changes."""
    if viewer(request) is None:
        return Response("log in first", status_code=401)
    db = request.app.state.db
    if not is_valid(flow, "flow"):
        return Response("no such flow", status_code=404)
    with db.read() as conn:
        if not queries.flow_exists(conn, flow):
            return Response("no such flow", status_code=404)

    def look() -> tuple[Any, bool]:
        with db.read() as conn:
            return ":".join(str(x) for x in queries.flow_version(conn, flow)), False
    return StreamingResponse(_stream(request, look, v), media_type="text/event-stream", headers=_headers())
