"""``mfc config show``: every setting, its value and where it came from."""

from __future__ import annotations

import os

import click

from mfc.cli.common import datastore_option, load_config


@click.group(name="config")
def config_group() -> None:
    """Show the resolved configuration."""


@config_group.command(name="show")
@datastore_option
def config_show(datastore_root: str | None) -> None:
    """Print every setting, its value and where it came from."""
    from mfc.config import SETTINGS, config_path

    config = load_config(datastore_root)
    click.echo(f"config file: {config_path()}  profile: {os.environ.get('MFC_PROFILE') or 'default'}")
    for key in SETTINGS:
        click.echo(f"{key:16} {config[key]!s:40} {config.sources[key]}")


