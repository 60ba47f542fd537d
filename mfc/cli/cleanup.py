"""``mfc cleanup``: remove the containers mfc runs left on the local Docker engine.

Registered by :mod:`mfc.cli` with ``cli.add_command(cleanup)``.
"""

from __future__ import annotations

import click

from mfc.cli.common import valid_id


@click.command(name="cleanup")
@click.option("--all", "include_running", is_flag=True,
              help="Also stop and remove running mfc containers (default: only stopped ones).")
@click.option("--run", "run_id", default=None, metavar="RUN_ID", callback=valid_id,
              help="Only the containers of this run.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def cleanup(include_running: bool, run_id: str | None, dry_run: bool) -> None:
    """Remove leftover mfc task containers (those labelled io.mfc.run) from the Docker engine."""
    from mfc.builder.engine import docker_client
    from mfc.runner.containers import cleanup_containers

    client = docker_client(timeout=30)
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
