"""Routes of steps, tasks and attempts: attempt batches written by tasks, the listings the UI
reads, and an attempt's logs and cards read from the datastore (only from the roots this
service was given: a location a writer named elsewhere is never opened)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from mfc.service import store_tasks
from mfc.service.api_common import attempt_number, db_of, parts
from mfc.service.auth import Caller, reader, writer
from mfc.service.models import Attempts

router = APIRouter()
RUN = "/flows/{flow}/runs/{run_id}"
ATTEMPT = RUN + "/steps/{step}/tasks/{task_id}/attempts/{attempt}"
MAX_LOG_CHUNK = 1 << 20
# Cards are HTML a step made: their own inline scripts and styles may run, in a sandbox (an
# origin of their own, so they cannot read the service's cookies), and nothing is loaded from elsewhere.
CARD_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
               "font-src data:; sandbox allow-scripts")


@router.post(RUN + "/attempts")
def post_attempts(flow: str, run_id: str, body: Attempts, request: Request,
                  _: Caller = Depends(writer)) -> dict[str, Any]:
    """Register started attempts and complete finished ones (create-only records; the first
    final attempt of a task wins), in one transaction."""
    parts(flow, run_id)
    entries = [entry.model_dump() for entry in body.attempts]
    return {"written": store_tasks.write_attempts(db_of(request), flow, run_id, entries)}


@router.get(RUN + "/steps")
def steps(flow: str, run_id: str, request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    parts(flow, run_id)
    return {"steps": store_tasks.steps(db_of(request), flow, run_id)}


@router.get(RUN + "/steps/{step}/tasks")
def tasks(flow: str, run_id: str, step: str, request: Request, _: Caller = Depends(reader)) -> dict[str, Any]:
    parts(flow, run_id, step)
    return {"tasks": store_tasks.tasks(db_of(request), flow, run_id, step)}


@dataclass(frozen=True)
class AttemptPath:
    """The path parts naming one attempt, checked."""

    flow: str
    run_id: str
    step: str
    task_id: str
    attempt: int


def attempt_path(flow: str, run_id: str, step: str, task_id: str, attempt: str) -> AttemptPath:
    """FastAPI dependency: the attempt a route's path names (400 for a bad part)."""
    parts(flow, run_id, step, task_id)
    return AttemptPath(flow, run_id, step, task_id, attempt_number(attempt))


def _attempt(request: Request, where: AttemptPath) -> dict[str, Any]:
    return store_tasks.attempt(db_of(request), where.flow, where.run_id, where.step, where.task_id, where.attempt)


@router.get(ATTEMPT)
def get_attempt(request: Request, where: AttemptPath = Depends(attempt_path),
                _: Caller = Depends(reader)) -> dict[str, Any]:
    found = _attempt(request, where)
    found.pop("_card_locations")
    return found


def _same_root(a: str, b: str) -> bool:
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


def attempt_store(request: Request, logs: dict[str, Any] | None, what: str) -> Any:
    """The blob store of an attempt's datastore root, if this service may read it (404 otherwise)."""
    root = (logs or {}).get("root")
    allowed: list[str] = request.app.state.datastore_roots
    if not isinstance(root, str) or not any(_same_root(root, r) for r in allowed):
        raise HTTPException(404, f"the {what} of this attempt is in {str(root)[:200]!r}, "
                                 "not readable by this service (start it with --datastore-root for that root)")
    return _blob_store(root)


@functools.lru_cache(maxsize=16)
def _blob_store(root: str) -> Any:
    """One store per served root, opened on first use (an S3 store builds its clients once)."""
    from mfc.stores.blob import open_blob_store

    return open_blob_store(root)


def key_inside(key: Any, flow: str, what: str) -> str:
    """``key`` if it is a blob key inside ``flow`` (404 otherwise: a writer may not point readers elsewhere)."""
    if not isinstance(key, str) or not key.startswith(f"{flow}/") or ".." in key.split("/"):
        raise HTTPException(404, f"this attempt has no {what} readable by this service")
    return key


def _whole_characters(part: bytes, at_end: bool) -> bytes:
    """``part`` without a UTF-8 character cut at its end (the next read starts with it)."""
    if at_end:
        return part
    for back in range(4):
        try:
            part[:len(part) - back].decode()
        except UnicodeDecodeError:
            continue
        return part[:len(part) - back] if len(part) > back else part
    return part


@router.get(ATTEMPT + "/logs/{stream}")
def logs(stream: str, request: Request, where: AttemptPath = Depends(attempt_path),
         offset: int = Query(0, ge=0), limit: int = Query(65536, ge=1, le=MAX_LOG_CHUNK),
         _: Caller = Depends(reader)) -> dict[str, Any]:
    """A part of the attempt's stdout or stderr: ``text`` from byte ``offset``, at most ``limit``
    bytes; ``next_offset`` is where the next read starts, ``size`` the log's size so far."""
    if stream not in ("stdout", "stderr"):
        raise HTTPException(400, f"stream {stream[:40]!r} is not stdout or stderr")
    found = _attempt(request, where)
    blobs = attempt_store(request, found["logs"], "logs")
    key = key_inside((found["logs"] or {}).get(stream), where.flow, stream)
    from mfc.stores.blob import UnsafeKey

    try:
        data = blobs.read_log(key)
    except UnsafeKey:
        raise HTTPException(404, f"this attempt has no {stream} readable by this service") from None
    part = _whole_characters(data[offset:offset + limit], offset + limit >= len(data))
    return {"text": part.decode("utf-8", errors="replace"), "offset": offset, "next_offset": offset + len(part),
            "size": len(data)}


@router.get(ATTEMPT + "/cards/{card_id}", response_class=HTMLResponse)
def card(card_id: str, request: Request, where: AttemptPath = Depends(attempt_path),
         _: Caller = Depends(reader)) -> HTMLResponse:
    """A card's HTML, from the datastore, under a Content-Security-Policy that loads nothing from
    elsewhere and runs its scripts in a sandbox."""
    found = _attempt(request, where)
    location = found["_card_locations"].get(card_id)
    if location is None:
        raise HTTPException(404, f"no card {card_id[:80]!r} in this attempt")
    blobs = attempt_store(request, found["logs"], "card")
    key = key_inside(location, where.flow, "card")
    from mfc.stores.blob import BlobNotFound, UnsafeKey

    try:
        html = blobs.get_bytes(key)
    except (BlobNotFound, UnsafeKey):
        raise HTTPException(404, f"card {card_id[:80]!r} is not in the datastore") from None
    return HTMLResponse(html.decode("utf-8", errors="replace"),
                        headers={"Content-Security-Policy": CARD_POLICY, "X-Content-Type-Options": "nosniff"})
