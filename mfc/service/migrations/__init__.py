"""Alembic migrations of the service database (run by :mod:`mfc.service.migrate`)."""
