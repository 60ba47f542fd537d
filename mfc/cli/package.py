"""``mfc package``: snapshot a flow's project as a code package, and list a run's package."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mfc.exceptions import MfcError

if TYPE_CHECKING:
    from mfc.stores.artifacts import ArtifactStore


def _datastore_option(func: Callable[..., Any]) -> Callable[..., Any]:
    from mfc.cli.common import datastore_option

    return datastore_option(func)


@click.command(name="package")
@click.argument("args", nargs=-1, required=True, metavar="FLOW | show PATHSPEC")
@_datastore_option
def package_group(args: tuple[str, ...], datastore_root: str | None) -> None:
    """Snapshot FLOW's project into the datastore (``mfc package flow.py``), or list the files of
    a run's code package (``mfc package show Flow/run_id``)."""
    if args[0] == "show":
        if len(args) != 2:
            raise MfcError("usage: mfc package show Flow/run_id")
        package_show(args[1], datastore_root)
        return
    if len(args) != 1:
        raise MfcError("usage: mfc package FLOW  (or: mfc package show Flow/run_id)")
    _package(args[0], datastore_root)


def _package(flow: str, datastore_root: str | None) -> None:
    from mfc.cli.common import load_config
    from mfc.cli.inspect import flow_name_of
    from mfc.packager import format_size
    from mfc.runner.launch import snapshot_code
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_configured_store

    config = load_config(datastore_root, access="write")
    name = flow_name_of(flow)
    store = ArtifactStore(open_configured_store(config), name)
    code = snapshot_code(flow.rpartition(":")[0] if flow.endswith(f":{name}") else flow, store, config)
    manifest_files = _files(store, code["sha256"])
    click.echo(f"code package {code['sha256']}")
    click.echo(f"  root:  {code['root']}")
    click.echo(f"  files: {len(manifest_files)}, {format_size(int(code['size']))} compressed")
    click.echo(f"  stored in {config.datastore_root}")


def _files(store: ArtifactStore, sha: str) -> list[dict]:
    from mfc.packager import read_manifest

    return read_manifest(store.load_bytes(sha)).get("files", [])


def package_show(pathspec: str, datastore_root: str | None) -> None:
    """List the files of a run's code package: Flow/run_id."""
    from mfc.cli.common import load_config
    from mfc.packager import format_size
    from mfc.pathspec import parse_pathspec
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_configured_store
    from mfc.stores.provider import open_metadata

    flow, run_id = parse_pathspec(pathspec, max_parts=2).parts
    config = load_config(datastore_root, access="read")
    blobs = open_configured_store(config)
    run = open_metadata(blobs, config).run(flow, run_id)
    if run is None:
        raise MfcError(f"no run {flow}/{run_id} in {config.datastore_root}")
    code = run.get("code_package")
    if not code:
        raise MfcError(f"run {flow}/{run_id} has no code package")
    files = _files(ArtifactStore(blobs, flow), code["sha256"])
    click.echo(f"code package {code['sha256']} of {flow}/{run_id} ({len(files)} files, flow file {code.get('flow_file')})")
    for item in files:
        click.echo(f"  {item['size']:>10}  {item['sha256'][:12]}  {item['path']}")
    total = sum(item["size"] for item in files)
    click.echo(f"  {format_size(total)} in all")
