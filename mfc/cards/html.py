"""The HTML every card is made of: one self-contained page (inline CSS, images as ``data:`` URIs,
no scripts, nothing fetched from the network), and the escaping every piece of text goes through.

Where Metaflow's cards load a JavaScript bundle that renders JSON, mfc's are plain HTML, so a
card opens the same in a browser, a notebook's iframe and the web UI, offline.
"""

from __future__ import annotations

import reprlib
from html import escape
from typing import Any

PREVIEW_CHARS = 500

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f7f9;color:#1f2328}
main{max-width:1100px;margin:0 auto;padding:24px}
header{border-bottom:1px solid #d0d7de;margin-bottom:16px;padding-bottom:8px}
header h1{font-size:20px;margin:0 0 4px}
header .meta{color:#57606a;font-size:13px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;margin:12px 0}
h2{font-size:16px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:12px;font-family:ui-monospace,monospace}
figure{margin:8px 0}
figure img{max-width:100%;height:auto}
figcaption{color:#57606a;font-size:12px}
.error{border-color:#cf222e;background:#fff5f5}
.error h2{color:#cf222e}
.label{color:#57606a;font-size:12px}
"""


def text(value: Any) -> str:
    """``str(value)`` escaped for HTML text and attributes."""
    return escape(str(value), quote=True)


def short_repr(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """A short repr (containers and strings cut by :mod:`reprlib`, then at ``limit`` characters);
    not escaped. A value whose repr raises is described instead."""
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = limit
    shortener.maxlist = shortener.maxtuple = shortener.maxdict = shortener.maxset = 20
    try:
        out = shortener.repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ is shown, never raised
        out = f"<{type(value).__name__}: repr failed: {type(exc).__name__}: {exc}>"
    return out if len(out) <= limit else out[: limit - 3] + "..."


def error_block(title: str, detail: str) -> str:
    """A red box holding ``title`` and ``detail`` (a traceback, a message), both escaped."""
    return f"<section class='error'><h2>{text(title)}</h2><pre>{text(detail)}</pre></section>"


def page(title: str, meta: str, body: str) -> str:
    """A whole card: ``title`` and ``meta`` are plain text (escaped here); ``body`` is HTML that
    the components have already escaped."""
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{text(title)}</title><style>{_CSS}</style></head><body><main>"
            f"<header><h1>{text(title)}</h1><div class='meta'>{text(meta)}</div></header>"
            f"{body}</main></body></html>")
