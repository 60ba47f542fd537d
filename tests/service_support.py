"""Fixtures of the metadata service tests: a database URL for each backend (``db_url``: a SQLite
file and a fresh PostgreSQL database per test module, the same tests on both) and a real
uvicorn server on a free port (:func:`running_service`).

PostgreSQL is the local one ``.ci/pg-up.sh`` starts (127.0.0.1:5432); the tests skip it with a
reason when it is not reachable, unless CI is true, where that fails them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ROLE = "mfctest"
PG_BASE = f"postgresql://{PG_ROLE}:{PG_ROLE}@127.0.0.1:5432"
_pg_ready: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_unavailable(why: str) -> None:
    if _in_ci():
        pytest.fail(f"PostgreSQL is needed in CI: {why}", pytrace=False)
    pytest.skip(f"PostgreSQL not reachable: {why}")


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_BASE}/{PG_ROLE}", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _pg_setup() -> None:
    """The test role and its database, once per session; the role may create databases."""
    if _pg_ready:
        return
    try:
        proc = subprocess.run(["bash", os.path.join(REPO, ".ci", "pg-up.sh"), PG_ROLE], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _pg_unavailable(str(exc))
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        _pg_unavailable(said[-1] if said else "pg-up.sh failed")
    try:
        _pg_admin("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        _pg_unavailable(str(exc).strip().splitlines()[0])
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-qAt", "-c", f"ALTER ROLE {PG_ROLE} CREATEDB"],
                   capture_output=True, timeout=30)
    _pg_ready.append("yes")


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (its URL), dropped afterwards."""
    _pg_setup()
    name = f"mfc_svc_{uuid.uuid4().hex[:12]}"
    _pg_admin(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_BASE}/{name}"
    finally:
        from mfc.service import db as service_db

        service_db.dispose_all()
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request: Any, tmp_path_factory: Any) -> Iterator[str]:
    """A database URL for one test module: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('svc')}/service.db"
        return
    with pg_database() as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str = "Flow") -> str:
    """A flow name no other test uses (tests of one module share its database)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def running_service(db_url: str, tmp_path: Any, config: Any = None,
                    datastore_roots: list[str] | None = None) -> Iterator[SimpleNamespace]:
    """A real uvicorn server of the service on a free port, in a thread: ``url``, ``db`` (the
    opened Database), ``token`` (may write) and ``read_only_token``."""
    import uvicorn

    from mfc.service.app import create_app
    from mfc.service.auth import create_token
    from mfc.service.db import open_database

    db = open_database(db_url)
    token = create_token(db, label="test")
    read_only = create_token(db, read_only=True, label="test read-only")
    app = create_app(db, config, datastore_roots if datastore_roots is not None else [str(tmp_path)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           limit_concurrency=1000, backlog=2048))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", db=db, token=token, read_only_token=read_only, app=app)
    finally:
        server.should_exit = True
        thread.join(10)
        db.engine.dispose()


def client(service: SimpleNamespace, token: str | None = "", **kwargs: Any) -> httpx.Client:
    """An HTTP client of the service sending ``token`` (default: the writing one; None: none)."""
    token = service.token if token == "" else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=service.url, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def service(db_url: str, tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """A running service for one test module (on each database backend); ``root``: the
    datastore directory it may read logs and cards from."""
    root = tmp_path_factory.mktemp("datastore")
    with running_service(db_url, root, datastore_roots=[str(root)]) as running:
        running.root = str(root)
        yield running
