"""The metadata service's web UI: server-rendered pages (Jinja2, autoescaped), a little vanilla
JavaScript for live updates over server-sent events and for the write buttons, and CSS, all
served by :data:`router` (mounted at ``/`` by :func:`mfc.service.app.create_app`). Nothing is
fetched from the network and nothing is built at install time."""

from __future__ import annotations

from fastapi import APIRouter

from mfc.service.ui import events, pages, session, static

router = APIRouter(include_in_schema=False)
router.include_router(session.router)
router.include_router(static.router)
router.include_router(events.router)
router.include_router(pages.router)

__all__ = ["router"]
