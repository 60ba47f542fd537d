"""An HTTP client of the metadata service's API (:mod:`mfc.service`), for the service metadata
provider (:mod:`mfc.stores.service_metadata`) in runs, tasks and readers.

It keeps one connection pool per process (a forked task makes its own: pools are not shared
across ``fork``), sends the token on every request, and retries with exponential backoff what
may pass (a connection refused or reset, a timeout, 502/503/504): ``retries`` tries over at
most about ``2 ** retries`` seconds. A 4xx answer is never retried; it is a :class:`ServiceError`
carrying the status and the service's ``detail``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3

from mfc.exceptions import MfcError

RETRY_STATUSES = (502, 503, 504)
DEFAULT_RETRIES = 5  # about 1 + 2 + 4 + 8 s of backoff before a task gives up on a service that is down
TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)
HINT = "start it with `mfc service`, check service_url, or set metadata = \"local\""


class ServiceError(MfcError):
    """The metadata service refused a request (``status``: its HTTP status, 0 when it could not
    be reached)."""

    def __init__(self, message: str, status: int = 0, detail: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.detail = detail


def quoted(*parts: str) -> str:
    """Path segments of a route, each percent-encoded (pathspec parts are checked, this is belt and braces)."""
    return "/".join(quote(str(p), safe="") for p in parts)


class ServiceClient:
    """Requests to one service (``url``, e.g. ``http://127.0.0.1:8642``) with one token."""

    def __init__(self, url: str, token: str | None, retries: int | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise MfcError(f"service_url {url!r} is not an http(s):// URL", hint="e.g. service_url = \"http://127.0.0.1:8642\"")
        self.url = url.rstrip("/")
        self.token = token or ""
        self.retries = max(1, retries if retries is not None else _env_retries())
        self._pool: urllib3.PoolManager | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _manager(self) -> urllib3.PoolManager:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = urllib3.PoolManager(maxsize=8, block=False, timeout=TIMEOUT, retries=False)
                self._pid = os.getpid()
            return self._pool

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
                expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        """The JSON answer (None for 204) of ``method path``; ServiceError otherwise (after the
        retries for what may pass)."""
        url = f"{self.url}{path}" + (f"?{urlencode(query)}" if query else "")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), default=str).encode()
            headers["Content-Type"] = "application/json"
        delay, last = 0.5, ""
        for attempt in range(self.retries):
            try:
                answer = self._manager().request(method, url, body=data, headers=headers)
            except urllib3.exceptions.HTTPError as exc:
                last = f"cannot connect ({_reason(exc)})"
            else:
                if answer.status in expect:
                    return _json(answer.data) if answer.status != 204 else None
                if answer.status not in RETRY_STATUSES:
                    detail = _detail(answer.data)
                    raise ServiceError(f"metadata service at {self.url}: {method} {path} answered {answer.status}: "
                                       f"{_text(detail)}", answer.status, detail)
                last = f"answered {answer.status} ({_text(_detail(answer.data))})"
            if attempt + 1 < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise ServiceError(f"metadata service at {self.url}: {last} after {self.retries} tr"
                           f"{'y' if self.retries == 1 else 'ies'}", 0, hint=HINT)

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query={k: v for k, v in query.items() if v is not None} or None)

    def post(self, path: str, body: Any, expect: tuple[int, ...] = (200, 201)) -> Any:
        return self.request("POST", path, body, expect=expect)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path, expect=(200, 204, 404))

    def whoami(self) -> dict[str, Any]:
        """Who the token is (``token_id``, ``read_only``); ServiceError when the service cannot be
        reached or refuses the token."""
        found: dict[str, Any] = self.get("/api/v1/whoami")
        return found


def _env_retries() -> int:
    """``MFC_SERVICE_RETRIES`` (tries of a request that may pass), else the default."""
    text = os.environ.get("MFC_SERVICE_RETRIES", "")
    try:
        return int(text) if text else DEFAULT_RETRIES
    except ValueError:
        raise MfcError(f"MFC_SERVICE_RETRIES={text!r} is not a whole number of tries") from None


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    return text.split(": ", 1)[-1][:200]


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        raise ServiceError(f"the metadata service answered something that is not JSON: {data[:100]!r}") from None


def _detail(data: bytes) -> Any:
    try:
        found = json.loads(data)
    except ValueError:
        return data[:200].decode("utf-8", "replace")
    return found.get("detail", found) if isinstance(found, dict) else found


def _text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict) and "msg" in detail[0]:
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d['msg']}" for d in detail[:3])
    return json.dumps(detail, default=str)[:300]
