"""Schema migrations of the service database, with Alembic, run from code (no alembic.ini).

:func:`upgrade` brings a database to :func:`head_revision`; it refuses one whose revision this
mfc does not know (migrated by a newer mfc). On PostgreSQL it holds a transaction-level advisory
lock while it looks and migrates, so services starting at once on one empty database take
turns instead of both creating the tables; SQLite's ``BEGIN IMMEDIATE`` does the same there.
"""

from __future__ import annotations

import os

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from mfc.exceptions import MfcError
from mfc.version import __version__

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
LOCK_KEY = 0x6D6663_5356  # "mfcSV": the advisory lock migrations hold on PostgreSQL


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The schema revision this mfc writes."""
    head = _script().get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine | Connection) -> str | None:
    """The database's schema revision, None when it has none (empty)."""
    if isinstance(engine, Connection):
        return MigrationContext.configure(engine).get_current_revision()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _refuse_newer(revision: str | None, where: str) -> None:
    if revision is None:
        return
    known = {r.revision for r in _script().walk_revisions()}
    if revision not in known:
        raise MfcError(f"database {where} has schema revision {revision}, which this mfc (version {__version__}) "
                       f"does not know: it was migrated by a newer mfc; upgrade mfc")


def _where(engine: Engine) -> str:
    from mfc.service.db import describe

    return describe(engine.url)


def check_not_newer(engine: Engine) -> None:
    """MfcError when the database's schema is from a newer mfc."""
    _refuse_newer(current_revision(engine), _where(engine))


def upgrade(engine: Engine) -> None:
    """Migrate the database to :func:`head_revision`, in one transaction (all or nothing)."""
    from alembic import command

    config = _alembic_config()
    from mfc.service.db import WRITE_OPTION

    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        revision = current_revision(connection)
        _refuse_newer(revision, _where(engine))
        if revision == head_revision():
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
