"""The UI's CSS and script, from the package (no CDN, no build step)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from mfc.service.ui.render import HERE

router = APIRouter(include_in_schema=False)

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
FILES = {p.name: p for p in (HERE / "static").iterdir() if p.suffix in TYPES}


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """One of the files shipped in ``static/``, by name only (nothing else is reachable)."""
    path = FILES.get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(path.read_bytes(), media_type=TYPES[path.suffix],
                    headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
