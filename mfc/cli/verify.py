"""``mfc verify FLOW[/RUN]``: check every record and object a run uses (see
:mod:`mfc.stores.verify`); one line per damaged or missing part, exit 1 if there is any."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from mfc.exceptions import MfcError


class VerifyFailed(MfcError):
    """A verified run has damaged or missing parts. Exit code 1."""

    exit_code = 1


def _datastore_option(func: Any) -> Any:
    from mfc.cli.common import datastore_option

    return datastore_option(func)


def _target(ref: str) -> tuple[str, str | None]:
    """(flow name, run id or None) of ``flow.py``, ``Flow`` or ``Flow/run_id``."""
    from mfc.cli.inspect import flow_name_of

    if ref.endswith(".py") or os.path.isfile(ref) or ":" in ref:
        return flow_name_of(ref), None
    parts = [p for p in ref.strip("/").split("/") if p]
    if not 1 <= len(parts) <= 2:
        raise MfcError(f"verify {ref!r}: expected FLOW (a flow file or name) or Flow/run_id")
    return parts[0], parts[1] if len(parts) == 2 else None


def _summary(check: Any, seconds: float) -> str:
    from mfc.client.render import format_size

    status = f" ({check.status})" if check.status else ""
    return (f"{check.pathspec}: ok{status}: {check.records} records, {check.objects} objects "
            f"({format_size(check.object_bytes)}), {check.logs} logs checked in {seconds:.2f}s")


@click.command()
@click.argument("target", metavar="FLOW[/RUN]")
@click.option("--all", "every", is_flag=True, help="Every run of the flow (default: the latest, or the run named).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@_datastore_option
def verify(target: str, every: bool, as_json: bool, datastore_root: str | None) -> None:
    """Check a run's records, artifacts, code package and logs: report what is damaged or missing.

    FLOW is a flow file or name; without RUN the latest run is checked (every run with --all).
    Exit 1 if anything is damaged or missing.
    """
    from mfc.cli.common import load_config
    from mfc.stores.blob import open_configured_store
    from mfc.stores.provider import open_metadata
    from mfc.stores.verify import Verifier

    flow, run_id = _target(target)
    if run_id is not None and every:
        raise MfcError("verify: --all checks every run of a flow; name the flow alone (not Flow/run_id)")
    config = load_config(datastore_root)
    blobs = open_configured_store(config)
    with Verifier(blobs, flow, metadata=open_metadata(blobs, config)) as verifier:
        ids = [run_id] if run_id is not None else verifier.metadata.run_ids(flow)
        if not ids:
            raise MfcError(f"no runs of {flow} in {blobs.root}")
        if run_id is None and not every:
            ids = ids[:1]
        elif run_id is not None and not verifier.metadata.run_exists(flow, run_id):
            raise MfcError(f"no run {flow}/{run_id} in {blobs.root}")
        checks = []
        for one in ids:
            started = time.perf_counter()
            check = verifier.run(one)
            checks.append(check)
            if not as_json:
                for problem in check.problems:
                    click.echo(problem.message)
                if check.ok:
                    click.echo(_summary(check, time.perf_counter() - started))
    if as_json:
        click.echo(json.dumps([c.to_json() for c in checks], indent=2))
    damaged = [c for c in checks if not c.ok]
    if damaged:
        count = sum(len(c.problems) for c in damaged)
        runs = damaged[0].pathspec if len(checks) == 1 else f"{len(damaged)} of {len(checks)} runs of {flow}"
        raise VerifyFailed(f"{runs}: {count} damaged or missing part{'s' if count != 1 else ''}")
    if len(checks) > 1 and not as_json:
        click.echo(f"{len(checks)} runs of {flow}: all ok")
