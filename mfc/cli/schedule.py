"""``mfc schedule``: run a deployed flow on a schedule (an EventBridge rule, or an EventBridge
Scheduler schedule when it has a timezone), show, disable, enable or delete it."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

import click

from mfc.exceptions import MfcError

FIRES_SHOWN = 5


def wanted_schedule(flow_cls: type, cron: str | None, rate: str | None,
                    zone: str | None) -> tuple[str, str | None]:
    """(canonical expression, timezone) from ``--cron``/``--rate``/``--timezone``, else from the
    flow's ``@schedule`` (``--timezone`` overrides its timezone); MfcError when there is neither."""
    from mfc.events.expressions import check_timezone, parse_schedule

    if zone is not None:
        zone = check_timezone(zone)
    if cron is not None or rate is not None:
        text = cron if cron is not None else rate
        assert text is not None
        schedule = parse_schedule(text)
        if schedule.kind != ("cron" if cron is not None else "rate"):
            flag = "--cron" if cron is not None else "--rate"
            raise MfcError(f"{flag} {text!r} is a {schedule.kind} expression; give it with --{schedule.kind}")
        return schedule.expression, zone
    from mfc.events.deploy import flow_schedule

    if not (getattr(flow_cls, "_flow_decorators", None) or {}).get("schedule"):
        raise MfcError(f"{flow_cls.__name__} has no @schedule: give --cron EXPR or --rate EXPR")
    found = flow_schedule(flow_cls)
    if found is None:
        raise MfcError(f"@schedule of {flow_cls.__name__} sets no schedule (hourly, daily, weekly and cron are all "
                       "off): give --cron EXPR or --rate EXPR")
    return found[0], zone or found[1]


def fire_lines(expression: str, zone: str | None, now: datetime, count: int = FIRES_SHOWN) -> list[str]:
    """The next ``count`` fire times after ``now``: UTC, the schedule's zone (if any), local time."""
    from zoneinfo import ZoneInfo

    from mfc.events.expressions import parse_schedule

    lines = []
    for fire in parse_schedule(expression).next_fires(now, count, zone):
        parts = [f"{fire:%Y-%m-%d %H:%M} UTC"]
        if zone:
            parts.append(f"{fire.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z} ({zone})")
        parts.append(f"{fire.astimezone():%Y-%m-%d %H:%M %Z} (local)")
        lines.append("  " + "   ".join(parts))
    return lines


def describe(found: Any) -> str:
    """A deployed schedule in one line: expression, zone, state, what it is."""
    kind = "EventBridge rule" if found.kind == "rule" else "EventBridge Scheduler schedule"
    zone = f" in {found.timezone}" if found.timezone else " (UTC)"
    return f"{found.expression}{zone}, {'enabled' if found.enabled else 'DISABLED'} ({kind} {found.name})"


@click.command("schedule")
@click.argument("flow")
@click.option("--cron", default=None, metavar="EXPR",
              help="EventBridge cron: 'cron(0 3 * * ? *)' or '0 3 * * ? *' (minutes hours day-of-month month "
                   "day-of-week year).")
@click.option("--rate", default=None, metavar="EXPR", help="Every N minutes, hours or days: 'rate(1 hour)' or '1 hour'.")
@click.option("--timezone", "zone", default=None, metavar="TZ",
              help="IANA timezone the cron is read in (e.g. Europe/Berlin): an EventBridge Scheduler schedule.")
@click.option("--show", is_flag=True, help="Print the schedule and its next five fire times.")
@click.option("--disable", is_flag=True, help="Stop the schedule from starting runs.")
@click.option("--enable", is_flag=True, help="Let a disabled schedule start runs again.")
@click.option("--delete", is_flag=True, help="Delete the schedule.")
@click.option("--name", default=None, help="The deployed state machine's name, when not the flow's.")
def schedule_command(flow: str, cron: str | None, rate: str | None, zone: str | None, name: str | None,
                     **actions: bool) -> None:
    """Run the deployed FLOW on a schedule: --cron or --rate (default: its @schedule), with
    --timezone an EventBridge Scheduler schedule; or --show, --disable, --enable, --delete it."""
    from mfc.cli.sfn import _machine
    from mfc.events import deploy

    chosen = [a for a in ("show", "disable", "enable", "delete") if actions[a]]
    if len(chosen) > 1:
        raise click.UsageError(f"give one of --show, --disable, --enable, --delete, not {' and '.join('--' + a for a in chosen)}")
    action = chosen[0] if chosen else None
    if cron is not None and rate is not None:
        raise click.UsageError("give --cron or --rate, not both")
    if action is not None and (cron is not None or rate is not None or zone is not None):
        raise click.UsageError(f"--{action} takes no --cron, --rate or --timezone")
    if action is None:
        from mfc.cli.common import resolve_flow

        _, _, cls = resolve_flow(flow)
        assert cls is not None
        expression, wanted_zone = wanted_schedule(cls, cron, rate, zone)  # checked before any AWS call
    config, cls, graph, machine = _machine(flow, name=name)
    machine_name = machine["name"]
    from mfc.sfn.registry import record_schedule

    if action == "show":
        found = deploy.show_schedule(config, machine_name)
        if found is None:
            raise MfcError(f"{cls.__name__} has no schedule (state machine {machine_name})",
                           hint="add one: mfc schedule FLOW --cron EXPR | --rate EXPR")
        click.echo(f"{cls.__name__}: {describe(found)}")
        click.echo(f"  target {found.target_arn} as {found.role_arn}, input {found.input}")
        note = " (a rate counts from when the schedule was made; shown from now)" if found.expression.startswith("rate(") else ""
        click.echo(f"next {FIRES_SHOWN} fire times{note}:")
        for line in fire_lines(found.expression, found.timezone, datetime.now(dt_timezone.utc)):
            click.echo(line)
        return
    if action in ("enable", "disable"):
        found = deploy.set_state(config, machine_name, enabled=action == "enable")
        record_schedule(config, machine_name, found)
        if found is None:
            raise MfcError(f"{cls.__name__} has no schedule to {action} (state machine {machine_name})")
        click.echo(f"{cls.__name__}: {describe(found)}")
        return
    if action == "delete":
        deleted = deploy.delete_schedule(config, machine_name)
        record_schedule(config, machine_name, None)
        click.echo(f"Deleted {', '.join(deleted)}." if deleted else f"{cls.__name__} has no schedule; nothing deleted.")
        return
    from mfc.events.inputs import default_parameters, execution_input

    parameters = default_parameters(cls, str(config["user"] or ""), graph,
                                    why=f"{cls.__name__} is started on a schedule")
    found = deploy.apply_schedule(config, machine["stateMachineArn"], machine_name, expression, wanted_zone,
                                  execution_input(parameters, {"kind": "schedule", "name": expression}))
    record_schedule(config, machine_name, found)
    click.echo(f"{cls.__name__}: {describe(found)}")
    for line in fire_lines(found.expression, found.timezone, datetime.now(dt_timezone.utc), count=1):
        click.echo(f"  next fire:{line[1:]}")
