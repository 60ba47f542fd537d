"""API tokens: made by ``mfc service token create``, kept only as hashes, checked on every route
but ``/health``.

A token reads ``mfc_<token_id>_<secret>``: ``token_id`` is public (listings, revoking), the
secret is 256 random bits. The database keeps the sha256 of the whole token; with secrets that
random a plain hash is right (nothing to brute-force), and it is compared in constant time.

A request carries its token as ``Authorization: Bearer <token>`` or in the ``mfc_token``
cookie (set by the web UI's login). :func:`reader` and :func:`writer` are the FastAPI
dependencies of read and write routes: 401 for a missing, unknown, revoked or expired token,
403 for a read-only token on a write route.

Verified tokens are cached in this process for :data:`CACHE_SECONDS` (5 s): a revoked token
stops working within 5 seconds on every service process, an expired one at once (expiry is
checked on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy import select, update

from mfc.exceptions import MfcError
from mfc.service.db import Database
from mfc.service.schema import tokens

PREFIX = "mfc_"
COOKIE = "mfc_token"
UI_HEADER = "x-mfc-ui"  # what the web UI's script sends with a write (a form on another site cannot)
CACHE_SECONDS = 5.0
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the token's public id and whether it may only read."""

    token_id: str
    read_only: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, read_only: bool = False, label: str = "", expires_in: float | None = None) -> str:
    """Make a token and return it (the only time its text exists: the database keeps a hash).
    ``expires_in``: seconds it holds, None for no end."""
    token_id = secrets.token_hex(6)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    now = time.time()
    with db.write() as conn:
        conn.execute(tokens.insert().values(token_id=token_id, hash=_hash(token), read_only=read_only,
                                            label=label[:255], created_at=now,
                                            expires_at=now + expires_in if expires_in is not None else None))
    return token


BOOTSTRAP_ID = "bootstrap"
BOOTSTRAP_ENV = "MFC_SERVICE_BOOTSTRAP_TOKEN"


def bootstrap_token(secret: str) -> str:
    """The token a deployment's generated secret stands for (``mfc_bootstrap_<secret>``): what
    ``mfc configure --from-stack`` writes as ``service_token``."""
    return f"{PREFIX}{BOOTSTRAP_ID}_{secret}"


def ensure_bootstrap_token(db: Database, secret: str) -> None:
    """Accept ``bootstrap_token(secret)`` as a writing token (``MFC_SERVICE_BOOTSTRAP_TOKEN`` of a
    service deployed by the template, whose token lives in Secrets Manager): created on first
    start, its hash replaced when the secret was rotated. MfcError for a secret too weak to be one."""
    if len(secret) < 32 or not secret.isalnum():
        raise MfcError(f"{BOOTSTRAP_ENV} must be at least 32 letters and digits",
                       hint="let Secrets Manager generate it (the template does), or use `mfc service token create`")
    digest, now = _hash(bootstrap_token(secret)), time.time()
    with db.write() as conn:
        found = conn.execute(select(tokens.c.hash).where(tokens.c.token_id == BOOTSTRAP_ID)).first()
        if found is None:
            conn.execute(tokens.insert().values(token_id=BOOTSTRAP_ID, hash=digest, read_only=False,
                                                label="from " + BOOTSTRAP_ENV, created_at=now))
        elif found[0] != digest:
            conn.execute(update(tokens).where(tokens.c.token_id == BOOTSTRAP_ID).values(
                hash=digest, created_at=now, revoked_at=None))


def revoke_token(db: Database, token_id: str) -> None:
    """Revoke a token by its id; MfcError when there is no such token."""
    with db.write() as conn:
        changed = conn.execute(update(tokens).where(tokens.c.token_id == token_id, tokens.c.revoked_at.is_(None))
                               .values(revoked_at=time.time())).rowcount
        if not changed:
            found = conn.execute(select(tokens.c.token_id).where(tokens.c.token_id == token_id)).first()
            if found is None:
                raise MfcError(f"no token {token_id!r}", hint="`mfc service token list` shows the tokens")


def list_tokens(db: Database) -> list[dict[str, Any]]:
    """Every token's id, label, kind and times (never its hash), oldest first."""
    columns = [tokens.c.token_id, tokens.c.label, tokens.c.read_only, tokens.c.created_at, tokens.c.expires_at,
               tokens.c.revoked_at]
    with db.read() as conn:
        rows = conn.execute(select(*columns).order_by(tokens.c.created_at)).mappings().all()
    return [dict(row) for row in rows]


def has_tokens(db: Database) -> bool:
    """Whether any token that still works exists."""
    now = time.time()
    with db.read() as conn:
        row = conn.execute(select(tokens.c.token_id).where(
            tokens.c.revoked_at.is_(None), (tokens.c.expires_at.is_(None)) | (tokens.c.expires_at > now)).limit(1)).first()
    return row is not None


class TokenChecker:
    """Verifies tokens against one database, caching answers for :data:`CACHE_SECONDS`."""

    def __init__(self, db: Database, cache_seconds: float = CACHE_SECONDS) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Caller, float | None]] = {}
        self._lock = threading.Lock()

    def check(self, token: str | None) -> Caller:
        """The caller a token names; HTTPException 401 saying why it is refused."""
        if not token:
            raise _unauthorized("missing API token: send 'Authorization: Bearer <token>' "
                                "(make one with `mfc service token create`)")
        now = time.time()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None and cached[0] > time.monotonic():
            _, caller, expires_at = cached
            if expires_at is not None and now >= expires_at:
                raise _unauthorized(f"API token {caller.token_id} expired")
            return caller
        caller, expires_at = self._verify(token, now)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (time.monotonic() + self.cache_seconds, caller, expires_at)
        return caller

    def _verify(self, token: str, now: float) -> tuple[Caller, float | None]:
        parts = token[len(PREFIX):].split("_", 1) if token.startswith(PREFIX) else []
        if len(parts) != 2 or not parts[0] or len(parts[0]) > 32:
            raise _unauthorized("malformed API token (expected mfc_<id>_<secret>)")
        with self.db.read() as conn:
            row = conn.execute(select(tokens).where(tokens.c.token_id == parts[0])).mappings().first()
        if row is None or not hmac.compare_digest(row["hash"], _hash(token)):
            raise _unauthorized("unknown API token")
        if row["revoked_at"] is not None:
            raise _unauthorized(f"API token {row['token_id']} was revoked")
        if row["expires_at"] is not None and now >= row["expires_at"]:
            raise _unauthorized(f"API token {row['token_id']} expired")
        return Caller(row["token_id"], bool(row["read_only"])), row["expires_at"]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def token_of(request: Request) -> str | None:
    """The token a request carries: its bearer token, else its ``mfc_token`` cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(COOKIE)


def reader(request: Request) -> Caller:
    """FastAPI dependency of read routes: the caller, or 401."""
    checker: TokenChecker = request.app.state.tokens
    return checker.check(token_of(request))


def writer(request: Request) -> Caller:
    """FastAPI dependency of write routes: the caller, 401 without a valid token, 403 for a
    read-only one, 403 for a write authenticated by the UI's cookie alone without the UI's
    ``X-MFC-UI: 1`` header (cross-site request forgery: another site can make a browser send
    the cookie, but not a custom header)."""
    caller = reader(request)
    if caller.read_only:
        raise HTTPException(403, f"API token {caller.token_id} is read-only; this route writes")
    if not request.headers.get("authorization") and request.headers.get(UI_HEADER) != "1":
        raise HTTPException(403, "a write authenticated by the mfc_token cookie needs the header 'X-MFC-UI: 1' "
                                 "(the web UI sends it); scripts send 'Authorization: Bearer <token>'")
    return caller
