"""``mfc sandbox up|status|down``: a local AWS (moto + an image registry) for trying mfc's AWS
executors without an account. Registered on the main group in :mod:`mfc.cli`."""

from __future__ import annotations

import json
from typing import Any

import click

from mfc.exceptions import MfcError

dir_option = click.option("--dir", "state_dir", default=None, metavar="DIR",
                          help="State directory: pid files, logs, registry storage "
                               "(default: $MFC_SANDBOX_DIR or ~/.mfc/sandbox).")


@click.group("sandbox")
def sandbox() -> None:
    """A local AWS for mfc: moto (S3, Batch in Docker, Step Functions, ...) and an image registry."""


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render_status(result: dict[str, Any]) -> str:
    """The status as small tables: components, then resources."""
    rows = [["COMPONENT", "PID", "PORT", "RUNNING", "HEALTHY"]]
    for c in result["components"]:
        rows.append([c["name"], str(c["pid"] or "-"), str(c["port"] or "-"), _yes(c["running"]), _yes(c["healthy"])])
    lines = [_table(rows)]
    res = result.get("resources")
    if res is not None:
        rows = [["RESOURCE", "NAME", "STATE", "STATUS"]]
        rows.append(["bucket", "mfc-sandbox", "-", "found" if res["bucket"] else "missing"])
        rows.append(["log group", "/aws/batch/job", "-", "found" if res["log_group"] else "missing"])
        rows += [["job queue", q["name"], q["state"] or "-", q["status"] or "-"] for q in res["queues"]]
        rows += [["compute env", c["name"], c["state"] or "-", c["status"] or "-"] for c in res["compute_environments"]]
        lines += ["", _table(rows)]
    elif result.get("resources_error"):
        lines += ["", f"resources: {result['resources_error']}"]
    lines += render_schedules(result)
    lines.append("")
    lines.append(f"state dir: {result['state_dir']}")
    if result.get("profile") and result.get("config"):
        lines.append(f"profile:   {result['profile']} in {result['config']}")
    return "\n".join(lines)


def render_schedules(result: dict[str, Any]) -> list[str]:
    """The schedules table (rules and Scheduler schedules with their next fire times), as lines."""
    if result.get("schedules_error"):
        return ["", f"schedules: {result['schedules_error']}"]
    found = result.get("schedules")
    if not found:
        return [] if found is None else ["", "schedules: none"]
    rows = [["SCHEDULE", "NAME", "STATE", "EXPRESSION", "TIMEZONE", "NEXT FIRES (UTC)"]]
    for s in found:
        nexts = ", ".join(t.replace("+00:00", "Z") for t in s["next_fires"]) or s.get("error") or "-"
        rows.append([s["kind"], s["name"], s["state"] or "-", s["expression"], s["timezone"] or "UTC", nexts])
    lines = ["", _table(rows)]
    offset = (result.get("clock") or {}).get("clock_offset")
    if offset:
        lines.append(f"the sandbox's clock runs {offset:g}s ahead of this one")
    return lines


def usage_hint(result: dict[str, Any]) -> str:
    """How to point mfc (and boto3) at the sandbox."""
    return ("Use it:\n"
            f"  export MFC_PROFILE={result.get('profile') or 'sandbox'} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\n"
            f"  (AWS endpoint {result['endpoint']}, images go to {result['image_registry']})\n"
            "Stop it with `mfc sandbox down`.")


@sandbox.command("up")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port of the moto server (default 5055, or the running one's).")
@click.option("--registry-port", type=click.IntRange(1, 65535), default=None,
              help="Port of the image registry (default 5056, or the running one's).")
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def up_cmd(port: int | None, registry_port: int | None, state_dir: str | None, as_json: bool) -> None:
    """Start the sandbox in the background (idempotent) and write the `sandbox` profile."""
    from mfc.sandbox import control

    echo = (lambda _msg: None) if as_json else click.echo
    result = control.up(state_dir, port, registry_port, echo=echo)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo("")
    click.echo(render_status(result))
    click.echo("")
    click.echo(usage_hint(result))
    if not result["healthy"]:
        raise MfcError("the sandbox started but a component does not answer; see the logs in " + result["state_dir"])


@sandbox.command("status")
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(state_dir: str | None, as_json: bool) -> None:
    """Show each component (pid, port, healthy) and the resources found. Exit 1 when not healthy."""
    from mfc.sandbox import control

    result = control.status(state_dir)
    click.echo(json.dumps(result, indent=2) if as_json else render_status(result))
    if not result["healthy"]:
        raise SystemExit(1)


@sandbox.command("down")
@dir_option
@click.option("--forget", is_flag=True, help="Also remove the `sandbox` profile from the config file.")
def down_cmd(state_dir: str | None, forget: bool) -> None:
    """Stop the sandbox's processes and leftover Batch job containers (the profile stays unless --forget)."""
    from mfc.sandbox import control

    control.down(state_dir, forget=forget, echo=click.echo)


if __name__ == "__main__":  # pragma: no cover - `python -m mfc.cli.sandbox` before the lead wires it
    sandbox()
