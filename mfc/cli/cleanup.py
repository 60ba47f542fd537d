"""``mfc cleanup``: remove the containers mfc runs left on the local Docker engine.

Registered by :mod:`mfc.cli` with ``cli.add_command(cleanup)``.
"""

from __future__ import annotations

import click

from mfc.cli.common import datastore_option, load_config, valid_id


@click.command(name="cleanup")
@click.option("--all", "include_running", is_flag=True,
              help="Also stop and remove running mfc containers (default: only stopped ones).")
@click.option("--run", "run_id", default=None, metavar="RUN_ID", callback=valid_id,
              help="Only the containers of this run.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@datastore_option
def cleanup(include_running: bool, run_id: str | None, dry_run: bool, datastore_root: str | None) -> None:
    """Remove what killed runs left behind: staging files no live process holds (in the datastore
    root's staging directory) and mfc task containers (labelled io.mfc.run) on the Docker engine."""
    _sweep_staging(datastore_root, dry_run)
    from mfc.builder.engine import docker_client
    from mfc.exceptions import MfcError
    from mfc.runner.containers import cleanup_containers

    try:
        client = docker_client(timeout=30)
    except MfcError as exc:
        click.echo(f"containers not checked: {exc}")
        return
    try:
        removed, kept = cleanup_containers(client, include_running=include_running, dry_run=dry_run,
                                           run_id=run_id)
    finally:
        client.close()
    verb = "would remove" if dry_run else "removed"
    for box in removed:
        click.echo(f"{verb} {box.name} ({box.task}; {box.status or box.state})")
    if not removed:
        click.echo("no leftover mfc containers" + (f" of run {run_id}" if run_id else ""))
    if kept:
        click.echo(f"{len(kept)} running mfc container{'s' if len(kept) != 1 else ''} left alone "
                   "(stop and remove them with --all)")


def _sweep_staging(datastore_root: str | None, dry_run: bool) -> None:
    from mfc.stores import staging
    from mfc.stores.blob import open_configured_store

    directory = open_configured_store(load_config(datastore_root)).staging_dir()
    click.echo(staging.describe(staging.sweep(directory, dry_run=dry_run), directory, dry_run))
