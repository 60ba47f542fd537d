"""The service's ASGI application: :func:`create_app` wires the database, the API (``/api/v1``),
``/health`` (no token), the web UI when it is installed (:mod:`mfc.service.ui`, at ``/``), a
request body limit and the error handlers.

Every error answers JSON ``{"detail": "..."}``: a user's mistake a 4xx with one line saying
what is wrong, an unexpected exception 500 with a short detail (and logged with its traceback).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mfc.exceptions import MfcError
from mfc.service import api, migrate
from mfc.service.auth import TokenChecker
from mfc.service.db import Database
from mfc.service.runs import ExecutionStatus
from mfc.service.store import Conflict, NotFound
from mfc.service.store_tasks import BadRecord
from mfc.version import __version__

MAX_BODY = 8 * 1024 * 1024
log = logging.getLogger("mfc.service")


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413, by its Content-Length or as it streams."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    if not started:
                        await _too_large(send, self.limit)
                    return {"type": "http.disconnect"}  # the app stops reading; what it answers is dropped
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _detail(exc: RequestValidationError) -> str:
    """Pydantic's errors as one line: where and what, the first few."""
    shown = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        shown.append(message if message.startswith(("body", where)) else f"{where}: {message}")
    more = len(exc.errors()) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def _handlers(app: FastAPI) -> None:
    def answer(status: int, detail: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"detail": detail, **extra}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(422 if exc.errors() and exc.errors()[0].get("type") != "json_invalid" else 400, _detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = answer(exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return answer(404, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return answer(409, str(exc), **exc.extra)

    @app.exception_handler(BadRecord)
    async def bad_record(_: Request, exc: BadRecord) -> JSONResponse:
        return answer(400, str(exc))

    @app.exception_handler(MfcError)
    async def user_error(_: Request, exc: MfcError) -> JSONResponse:
        return answer(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return answer(500, f"internal error ({type(exc).__name__}); the service's log has the details")


def _ui_router() -> Any:
    """The web UI's router (:mod:`mfc.service.ui`), None where it is not installed."""
    import importlib

    try:
        module = importlib.import_module("mfc.service.ui")
    except ModuleNotFoundError as exc:
        if exc.name not in ("mfc.service.ui",):
            raise
        return None
    return getattr(module, "router", None)


def create_app(db: Database, config: Any | None = None, datastore_roots: list[str] | None = None) -> FastAPI:
    """The service's application on ``db``. ``config``: a resolved :class:`mfc.config.Config`
    whose AWS settings reach Step Functions (None: runs' executions are not asked about, and
    triggering answers 503). ``datastore_roots``: the datastores whose logs and cards this
    service may read (a location elsewhere answers 404)."""
    app = FastAPI(title="mfc metadata service", version=__version__,
                  description="Runs, tasks, artifacts, tags, leases and deployments recorded by mfc.")
    app.state.db = db
    app.state.config = config
    app.state.datastore_roots = list(datastore_roots or [])
    app.state.tokens = TokenChecker(db)
    app.state.executions = ExecutionStatus(db, config)
    app.state.schema = migrate.current_revision(db.engine)
    _handlers(app)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness (no token needed): the schema revision and mfc's version."""
        return {"status": "ok", "schema": app.state.schema, "version": __version__}

    app.include_router(api.router, prefix=api.PREFIX)
    ui_router = _ui_router()
    if ui_router is not None:
        app.include_router(ui_router)
    app.add_middleware(BodyLimit)
    return app
