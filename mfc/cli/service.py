"""``mfc service``: run the metadata service, and manage its API tokens.

    mfc service [--db URL] [--host 127.0.0.1] [--port 8642] [--datastore-root ROOT ...]
    mfc service token create [--read-only] [--label L] [--expires-in DAYS] [--db URL]
    mfc service token list [--db URL]
    mfc service token revoke TOKEN_ID [--db URL]

The database is ``--db``, else the ``service_db`` setting (``MFC_SERVICE_DB``), else
``service.db`` in the local datastore directory.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from typing import Any

import click

from mfc.exceptions import MfcError

DEFAULT_PORT = 8642


def _db_option(func: Any) -> Any:
    return click.option("--db", "db_url", default=None, metavar="URL",
                        help="Database URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME "
                             "(default: service_db, else service.db in the local datastore).")(func)


def _open(db_url: str | None) -> Any:
    from mfc.config import Config
    from mfc.service.db import default_db_url, open_database

    config = Config()
    url = db_url or config["service_db"]
    if not url:  # the default file: its directory is the local datastore, made as `mfc run` makes it
        url = default_db_url(config)
        os.makedirs(os.path.dirname(url.removeprefix("sqlite:///")), exist_ok=True)
    return open_database(url), config


def _check_port(host: str, port: int) -> None:
    """MfcError naming the port when something listens on it already (or it cannot be bound)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise MfcError(f"port {port} on {host} is in use already",
                               hint="stop what listens there or give another --port") from None
            raise MfcError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@click.group("service", invoke_without_command=True)
@_db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="Port to listen on.")
@click.option("--datastore-root", "datastore_roots", multiple=True, metavar="ROOT",
              help="A datastore whose logs and cards the service may read (repeatable; default: the configured one).")
@click.pass_context
def service(ctx: click.Context, db_url: str | None, host: str, port: int, datastore_roots: tuple[str, ...]) -> None:
    """Run the metadata service: an HTTP API (and web UI) over every run recorded in its database."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {**(ctx.obj or {}), "db_url": db_url}
        return
    import uvicorn

    from mfc.service.app import create_app
    from mfc.service.auth import BOOTSTRAP_ENV, ensure_bootstrap_token, has_tokens

    _check_port(host, port)
    db, config = _open(db_url)
    bootstrap = os.environ.get(BOOTSTRAP_ENV)
    if bootstrap:
        ensure_bootstrap_token(db, bootstrap)
    roots = list(datastore_roots) or [config.datastore_root]
    app = create_app(db, config, roots)
    click.echo(f"mfc service on http://{host}:{port} (database: {db.url})")
    if not has_tokens(db):
        click.echo("no API tokens yet: make one with `mfc service token create"
                   + (" --db URL` (the same URL)" if db_url else "`"))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    server.run()
    if not server.started:
        raise MfcError(f"the service could not listen on {host}:{port}", hint="is the port in use?")


@service.group("token")
def token_group() -> None:
    """Make, list and revoke API tokens."""


def _token_db(ctx: click.Context, db_url: str | None) -> Any:
    return _open(db_url or (ctx.obj or {}).get("db_url"))[0]  # `mfc service --db URL token ...` too


@token_group.command("create")
@click.option("--read-only", is_flag=True, help="The token may read, not write.")
@click.option("--label", default="", help="What the token is for (shown by `token list`).")
@click.option("--expires-in", type=click.FloatRange(min=0, min_open=True), default=None, metavar="DAYS",
              help="Days until the token stops working (default: never).")
@_db_option
@click.pass_context
def token_create(ctx: click.Context, read_only: bool, label: str, expires_in: float | None, db_url: str | None) -> None:
    """Make a token and print it (only this once: the service keeps a hash)."""
    from mfc.service.auth import SECONDS_PER_DAY, create_token

    db = _token_db(ctx, db_url)
    click.echo(create_token(db, read_only, label, expires_in * SECONDS_PER_DAY if expires_in is not None else None))


@token_group.command("list")
@_db_option
@click.pass_context
def token_list(ctx: click.Context, db_url: str | None) -> None:
    """List the tokens (ids, labels, kinds, times; never the tokens themselves)."""
    from mfc.service.auth import list_tokens

    rows = list_tokens(_token_db(ctx, db_url))
    if not rows:
        click.echo("no tokens (make one with `mfc service token create`)")
        return
    now = time.time()
    for row in rows:
        state = ("revoked" if row["revoked_at"] is not None else
                 "expired" if row["expires_at"] is not None and row["expires_at"] <= now else "active")
        expires = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["expires_at"])) if row["expires_at"] else "never"
        click.echo(f"{row['token_id']}  {'read-only' if row['read_only'] else 'read-write':10}  {state:7}  "
                   f"expires {expires:16}  {row['label']}")


@token_group.command("revoke")
@click.argument("token_id")
@_db_option
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str, db_url: str | None) -> None:
    """Revoke a token (services stop accepting it within 5 seconds)."""
    from mfc.service.auth import revoke_token

    revoke_token(_token_db(ctx, db_url), token_id)
    click.echo(f"token {token_id} revoked")
