"""Alembic's environment: migrations run on the connection :func:`mfc.service.migrate.upgrade`
passes in (``config.attributes["connection"]``), inside its transaction."""

from __future__ import annotations

from alembic import context

from mfc.service.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("mfc's migrations run through mfc.service.migrate.upgrade, which passes a connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  transaction_per_migration=False)
context.run_migrations()
