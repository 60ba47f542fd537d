"""``mfc config show``: every setting, its value and where it came from."""

from __future__ import annotations

import os
from typing import Any

import click

from mfc.cli.common import load_config, setting_options


@click.group(name="config")
def config_group() -> None:
    """Show the resolved configuration."""


@config_group.command(name="show")
@setting_options
def config_show(**options: Any) -> None:
    """Print every setting, its value and where it came from; with the options of ``mfc run``,
    what a run given them would use."""
    from mfc.config import SETTINGS, config_path

    config = load_config(**options)
    click.echo(f"config file: {config_path()}  profile: {os.environ.get('MFC_PROFILE') or 'default'}")
    width = max(map(len, SETTINGS))
    for key in SETTINGS:
        value = config[key]
        if key.endswith("_token") and value:  # a secret: show only that it is set
            value = f"{str(value)[:8]}... (set)"
        click.echo(f"{key:{width}} {value!s:40} {config.sources[key]}")


