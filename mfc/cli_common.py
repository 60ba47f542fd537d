"""Pieces shared by the command modules (kept apart from mfc.cli to avoid import cycles)."""

from __future__ import annotations

from typing import Any

import click


def datastore_option(func: Any) -> Any:
    return click.option("--datastore-root", default=None, metavar="DIR|S3URL",
                        help="Datastore root (default: MFC_DATASTORE_ROOT, the profile, or the nearest .mfc directory).")(func)


def load_config(datastore_root: str | None = None, **flags: Any):
    from mfc.config import Config

    return Config({"datastore_root": datastore_root, **flags})
