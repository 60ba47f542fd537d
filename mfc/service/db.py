"""The service's database: an engine on SQLite (the default, a file in the local datastore) or
PostgreSQL (by URL), migrated to this mfc's schema when opened.

:func:`open_database` turns every way a database can be wrong (a URL that does not parse, an
unknown driver, a server that does not answer, a file that cannot be opened, a schema from a
newer mfc) into one :class:`~mfc.exceptions.MfcError` line naming the database, with its
password masked.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from mfc.exceptions import MfcError

SQLITE_BUSY_MS = 30_000
DB_FILE = "service.db"
WRITE_OPTION = "mfc_write"  # execution option of a connection that will write (see Database.write)
DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
           "postgresql+psycopg": "postgresql+psycopg"}


@dataclass
class Database:
    """An opened database: its engine, its URL as messages show it (password masked) and its
    dialect (``sqlite`` or ``postgresql``)."""

    engine: Engine
    url: str
    dialect: str
    _writer: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes (``with db.write() as conn:``): committed at the end, rolled
        back on an exception; on SQLite it holds the write lock from its start. SQLite takes one
        writer at a time anyway: this process's writers queue on a lock, woken the moment it is
        free, rather than polling the file lock in SQLite's busy handler (its sleeps, up to 100
        ms each, are what made writers wait under load)."""
        if self.dialect != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        with self._writer, self.engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            yield conn

    def read(self) -> Any:
        """A connection for reading (``with db.read() as conn:``)."""
        return self.engine.connect()

    def where(self) -> str:
        """What a message names: the file of a SQLite database, host:port/name of a server."""
        return describe(self.engine.url)


def masked(url: URL) -> str:
    """The URL with its password hidden."""
    return url.render_as_string(hide_password=True)


def describe(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    return f"PostgreSQL {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def parse_url(text: str) -> URL:
    """A database URL as users write it (``sqlite:///path``, ``postgresql://...``), with the driver
    mfc uses; MfcError naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise MfcError("empty database URL", hint="give sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME")
    try:
        url = make_url(text.strip())
    except ArgumentError:
        shown = text if "@" not in text else "..." + text.rsplit("@", 1)[1]
        raise MfcError(f"database URL {shown!r} does not parse",
                       hint="give sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME") from None
    driver = DRIVERS.get(url.drivername)
    if driver is None:
        raise MfcError(f"database URL {masked(url)}: unknown database kind {url.drivername!r} "
                       f"(known: sqlite, postgresql)")
    url = url.set(drivername=driver)
    if driver == "sqlite":
        if not url.database or url.database == ":memory:":
            raise MfcError(f"database URL {masked(url)} names no file", hint="give sqlite:///PATH")
        url = url.set(database=os.path.abspath(os.path.expanduser(url.database)))
    elif not url.database:
        raise MfcError(f"database URL {masked(url)} names no database", hint="end it with /NAME")
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None below). A writer's BEGIN
    # IMMEDIATE takes the write lock up front, so two writers wait for each other (busy_timeout)
    # instead of one failing when it upgrades its read lock; readers stay concurrent (WAL).
    immediate = connection.get_execution_options().get(WRITE_OPTION)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: URL) -> Engine:
    """An engine for a parsed URL (no connection made yet)."""
    if url.get_backend_name() == "sqlite":
        folder = os.path.dirname(url.database or "")
        if folder and not os.path.isdir(folder):
            raise MfcError(f"cannot open {describe(url)}: its directory {folder} does not exist")
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False,
                                                  "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5})


def unreachable(url: URL, exc: Exception) -> MfcError:
    """The one line for a database that cannot be reached or opened."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    why = detail[0] if detail else type(exc).__name__
    if url.password:
        why = why.replace(str(url.password), "***")
    return MfcError(f"cannot open the service database ({describe(url)}): {why}",
                    hint="check the URL, that the server runs and that the user may connect")


_OPENED: list[Engine] = []


def dispose_all() -> None:
    """Close the connections of every database opened in this process (tests drop databases)."""
    while _OPENED:
        _OPENED.pop().dispose()


def open_database(url: str, migrate: bool = True) -> Database:
    """Open the database at ``url`` and (``migrate``) bring its schema to this mfc's revision;
    MfcError with one line when the URL is bad, the database cannot be reached, or its schema
    is from a newer mfc."""
    from mfc.service import migrate as migrations

    parsed = parse_url(url)
    engine = make_engine(parsed)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError, NoSuchModuleError, OSError) as exc:
        engine.dispose()
        raise unreachable(parsed, exc) from None
    db = Database(engine, masked(parsed), parsed.get_backend_name())
    _OPENED.append(engine)
    try:
        if migrate:
            migrations.upgrade(engine)
        else:
            migrations.check_not_newer(engine)
    except (OperationalError, DBAPIError) as exc:
        engine.dispose()
        raise unreachable(parsed, exc) from None
    except MfcError:
        engine.dispose()
        raise
    return db


def default_db_url(config: Any | None = None) -> str:
    """``sqlite:///<local datastore directory>/service.db``: the nearest ``.mfc`` directory, or the
    config's datastore root when that is a local directory."""
    from mfc.config import default_datastore_root

    root = None
    if config is not None:
        configured = config["datastore_root"]
        if configured and "://" not in configured:
            root = os.path.abspath(configured)
    root = root or default_datastore_root()
    return f"sqlite:///{os.path.join(root, DB_FILE)}"
