"""Who is looking at a page: the token in the ``mfc_token`` cookie (set by ``/login``) or a
bearer header, checked by the service's token checker. Pages without a valid token send the
browser to ``/login``; the login form checks a token before it sets the cookie."""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from mfc.service.auth import COOKIE, Caller, TokenChecker, token_of
from mfc.service.ui.render import render

router = APIRouter()

COOKIE_DAYS = 30
MAX_FORM_BYTES = 8192


def viewer(request: Request) -> Caller | None:
    """The caller a page request carries a valid token for, None when it has none that works."""
    checker: TokenChecker = request.app.state.tokens
    try:
        return checker.check(token_of(request))
    except HTTPException:
        return None


def to_login(request: Request) -> RedirectResponse:
    """Send the browser to the login form, coming back here after."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(back, safe='')}", status_code=303)


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    """The login form."""
    return render("login.html", {"viewer": None, "next": _safe_next(next), "error": None})


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    """Check the token typed in, then set it as the HttpOnly, SameSite=Strict cookie."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    checker: TokenChecker = request.app.state.tokens
    try:
        if not (token.isascii() and token.isprintable()):  # a header or cookie could not carry it either
            raise HTTPException(401, "malformed API token (expected mfc_<id>_<secret>)")
        checker.check(token)
    except HTTPException as exc:
        return render("login.html", {"viewer": None, "next": target, "error": str(exc.detail)}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=COOKIE_DAYS * 86400, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout() -> Response:
    """Forget the cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
