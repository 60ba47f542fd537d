"""The UI's templates: one Jinja2 environment with autoescaping on everywhere, the filters the
templates share, and the headers every page carries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

HERE = Path(__file__).parent
STATIC_URL = "/static"

# Pages run no script but ours and no inline script; style attributes place the timeline's bars.
# Cards come from this origin too (their own route sets a stricter policy for their content).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def when(timestamp: float | None) -> str:
    """A time as the pages show it: UTC to the second."""
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(timestamp)))


def seconds(value: float | None) -> str:
    """A duration: ``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``."""
    if value is None:
        return ""
    value = max(float(value), 0.0)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def size(value: int | None) -> str:
    """A byte count: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""  # unreachable


def urlpart(value: Any) -> str:
    """A path segment, percent-encoded (ids follow the pathspec grammar; this is belt and braces)."""
    return quote(str(value), safe="")


environment = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                          autoescape=select_autoescape(default=True, default_for_string=True),
                          trim_blocks=False, lstrip_blocks=False)
environment.filters.update(when=when, seconds=seconds, bytes=size, urlpart=urlpart)


def render(name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """A template rendered as an HTML response with the UI's security headers."""
    html = environment.get_template(name).render(static_url=STATIC_URL, **context)
    return HTMLResponse(html, status_code=status_code, headers=page_headers())


def page_headers() -> dict[str, str]:
    """The headers of every page: its content policy, no sniffing, no caching."""
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
