"""Tokens: stored hashed, required on every route but /health, read-only tokens refused on
every write route, revoked and expired tokens refused, the UI's cookie accepted."""

from __future__ import annotations

import time

import httpx
import pytest
from service_support import client, db_url, service, unique  # noqa: F401
from sqlalchemy import select, text

from mfc.service.auth import create_token, list_tokens, revoke_token
from mfc.service.schema import tokens

pytestmark = pytest.mark.usefixtures("service")


def routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, from its OpenAPI document (this
    FastAPI keeps included routers lazily, so app.routes does not list them one by one)."""
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item]


def write_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every API route that writes, with its path parameters filled in."""
    return [(method, fill(path)) for method, path in routes(app) if method in ("POST", "PUT", "DELETE")]


def fill(path: str) -> str:
    values = {"flow": "AuthFlow", "run_id": "1", "step": "start", "task_id": "1", "attempt": "0",
              "name": "dep", "stream": "stdout", "card_id": "c"}
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    return path


def test_token_text_is_nowhere_in_the_database(service):  # noqa: F811
    token = create_token(service.db, label="hash check")
    with service.db.engine.connect() as conn:
        rows = conn.execute(select(tokens)).mappings().all()
        dump = " ".join(str(dict(r)) for r in rows)
    assert token not in dump and token.split("_", 2)[2] not in dump
    assert any(r["token_id"] == token.split("_")[1] for r in rows)
    listed = list_tokens(service.db)
    assert all("hash" not in row for row in listed)


def test_health_needs_no_token_and_everything_else_does(service):  # noqa: F811
    with client(service, token=None) as anonymous:
        assert anonymous.get("/health").status_code == 200
        for path in ("/api/v1/whoami", "/api/v1/flows", "/api/v1/version", "/api/v1/deployments"):
            answer = anonymous.get(path)
            assert answer.status_code == 401 and "missing API token" in answer.json()["detail"]
    for bad in ("mfc_nothere_secret", "garbage", "mfc_" + service.token.split("_")[1] + "_wrongsecret"):
        with client(service, token=bad) as wrong:
            answer = wrong.get("/api/v1/whoami")
            assert answer.status_code == 401, bad
    answer = httpx.get(service.url + "/api/v1/whoami", headers={"Authorization": "Basic abc"})
    assert answer.status_code == 401


def test_whoami_and_cookie(service):  # noqa: F811
    with client(service) as api:
        assert api.get("/api/v1/whoami").json() == {"token_id": service.token.split("_")[1], "read_only": False}
    answer = httpx.get(service.url + "/api/v1/whoami", cookies={"mfc_token": service.read_only_token})
    assert answer.status_code == 200 and answer.json()["read_only"] is True


def test_read_only_token_is_refused_on_every_write_route(service):  # noqa: F811
    routes = write_routes(service.app)
    assert len(routes) >= 10
    with client(service, token=service.read_only_token) as api:
        for method, path in routes:
            answer = api.request(method, path, json={})
            assert answer.status_code == 403, (method, path, answer.text)
            assert "read-only" in answer.json()["detail"]
        assert api.get("/api/v1/flows").status_code == 200


def test_revoked_token_stops_within_five_seconds(service):  # noqa: F811
    token = create_token(service.db, label="to revoke")
    with client(service, token=token) as api:
        assert api.get("/api/v1/whoami").status_code == 200
        revoke_token(service.db, token.split("_")[1])
        deadline = time.monotonic() + 7
        while api.get("/api/v1/whoami").status_code == 200:
            assert time.monotonic() < deadline, "a revoked token still works after 7 s"
            time.sleep(0.25)
        answer = api.get("/api/v1/whoami")
        assert answer.status_code == 401 and "revoked" in answer.json()["detail"]


def test_expired_token_is_refused(service):  # noqa: F811
    token = create_token(service.db, expires_in=1.0)
    with client(service, token=token) as api:
        assert api.get("/api/v1/whoami").status_code == 200
        time.sleep(1.2)
        answer = api.get("/api/v1/whoami")
        assert answer.status_code == 401 and "expired" in answer.json()["detail"]
    past = create_token(service.db, expires_in=-1.0)
    with client(service, token=past) as api:
        assert api.get("/api/v1/whoami").status_code == 401


def test_revoking_an_unknown_token_is_one_line(service):  # noqa: F811
    from mfc.exceptions import MfcError

    with pytest.raises(MfcError, match="no token 'nosuch'"):
        revoke_token(service.db, "nosuch")
    with service.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tokens WHERE token_id = 'nosuch'")).scalar() == 0
