"""The service database: URLs as users write them, one clear line for each way a database can
be wrong, migrations (fresh, idempotent, refused from a newer mfc, equal to schema.py), two
services migrating one empty database at once."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from service_support import db_url, pg_database  # noqa: F401
from sqlalchemy import inspect, text

from mfc.exceptions import MfcError
from mfc.service import migrate
from mfc.service.db import default_db_url, masked, open_database, parse_url
from mfc.service.schema import metadata


def test_fresh_database_is_migrated_to_head_and_matches_schema(db_url):  # noqa: F811
    db = open_database(db_url)
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert set(inspect(conn).get_table_names()) >= set(metadata.tables)
    again = open_database(db_url)  # idempotent
    assert migrate.current_revision(again.engine) == migrate.head_revision()
    assert db.dialect in ("sqlite", "postgresql")


def test_schema_from_a_newer_mfc_is_refused_with_one_line(db_url):  # noqa: F811
    db = open_database(db_url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        with pytest.raises(MfcError) as caught:
            open_database(db_url)
        message = str(caught.value)
        assert "schema revision 9999" in message and "newer mfc; upgrade mfc" in message
        assert "\n" not in message
        with pytest.raises(MfcError, match="9999"):
            open_database(db_url, migrate=False)
    finally:
        with db.engine.begin() as conn:
            conn.execute(text(f"UPDATE alembic_version SET version_num = '{migrate.head_revision()}'"))


@pytest.mark.parametrize("url, words", [
    ("", "empty database URL"),
    ("not a url", "does not parse"),
    ("mysql://u:p@h/db", "unknown database kind 'mysql'"),
    ("sqlite://", "names no file"),
    ("postgresql://u:p@127.0.0.1:5432", "names no database"),
])
def test_bad_urls_are_one_line(url, words):
    with pytest.raises(MfcError) as caught:
        open_database(url)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_unreachable_database_names_host_port_and_masks_the_password():
    with pytest.raises(MfcError) as caught:
        open_database("postgresql://someone:s3cret@127.0.0.1:1/nowhere")
    message = str(caught.value)
    assert "PostgreSQL 127.0.0.1:1/nowhere" in message and "s3cret" not in message


def test_sqlite_file_that_cannot_be_opened(tmp_path):
    with pytest.raises(MfcError, match="does not exist"):
        open_database(f"sqlite:///{tmp_path}/missing/dir/service.db")
    folder = tmp_path / "adir.db"
    folder.mkdir()
    with pytest.raises(MfcError, match=f"SQLite file {folder}"):
        open_database(f"sqlite:///{folder}")


def test_urls_as_users_write_them(tmp_path):
    assert parse_url("postgresql://u:p@h:5/d").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u:p@h:5/d").drivername == "postgresql+psycopg"
    assert parse_url(f"sqlite:///{tmp_path}/x.db").database == f"{tmp_path}/x.db"
    db = open_database(f"sqlite:///{tmp_path}/x.db")
    assert "x.db" in db.url
    assert masked(parse_url("postgresql://u:pw@h/d")) == "postgresql+psycopg://u:***@h/d"


def test_default_url_is_in_the_local_datastore(tmp_path):
    class Config(dict):
        pass

    assert default_db_url(Config(datastore_root=str(tmp_path))) == f"sqlite:///{tmp_path}/service.db"
    assert default_db_url(Config(datastore_root="s3://bucket/prefix")).endswith("/service.db")


def test_two_services_migrating_one_empty_postgresql_at_once():
    with pg_database() as url:
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def start() -> None:
            barrier.wait()
            try:
                open_database(url)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert migrate.current_revision(open_database(url).engine) == migrate.head_revision()
