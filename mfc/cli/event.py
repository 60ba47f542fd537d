"""``mfc event publish NAME [--payload JSON]``: send the event that starts the deployed flows whose
``@trigger`` names it (an EventBridge event on the bus ``mfc``, created when missing)."""

from __future__ import annotations

import json
from typing import Any

import click

from mfc.cli.common import load_config
from mfc.exceptions import MfcError


def parse_payload(text: str | None) -> dict[str, Any]:
    """The ``--payload`` value: a JSON object (``{}`` when not given)."""
    if text is None:
        return {}
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise MfcError(f"--payload is not JSON: {exc}", hint='give an object like \'{"alpha": 0.5}\'') from None
    if not isinstance(payload, dict):
        raise MfcError(f"--payload must be a JSON object (its fields are what @trigger maps to parameters), got "
                       f"{type(payload).__name__} {text[:80]}", hint='give an object like \'{"alpha": 0.5}\'')
    return payload


def event_entry(name: str, payload: dict[str, Any]) -> dict[str, str]:
    """The PutEvents entry of an mfc event."""
    from mfc.events.names import EVENT_BUS

    return {"Source": "mfc", "DetailType": name, "Detail": json.dumps(payload, separators=(",", ":")),
            "EventBusName": EVENT_BUS}


def publish(config: Any, name: str, payload: dict[str, Any]) -> str:
    """Publish one event; returns its event id. MfcError when EventBridge refuses it."""
    from mfc.events.trigger_deploy import ensure_bus, events_client
    from mfc.runner.batch_setup import access_error

    events = events_client(config)
    try:
        ensure_bus(events)
        result = events.put_events(Entries=[event_entry(name, payload)])
    except Exception as exc:  # noqa: BLE001 - one line
        raise access_error(exc, config, "Amazon EventBridge") from None
    entry = (result.get("Entries") or [{}])[0]
    if result.get("FailedEntryCount") or not entry.get("EventId"):
        why = ": ".join(str(entry.get(k)) for k in ("ErrorCode", "ErrorMessage") if entry.get(k)) or "no reason given"
        raise MfcError(f"EventBridge did not accept event {name!r}: {why}")
    return str(entry["EventId"])


@click.group("event")
def event() -> None:
    """Send the events that start deployed flows with @trigger."""


@event.command("publish")
@click.argument("name")
@click.option("--payload", default=None, metavar="JSON", help="The event's fields, a JSON object (default {}).")
def publish_command(name: str, payload: str | None) -> None:
    """Publish the event NAME; each deployed flow with @trigger(event=NAME) starts a run, its
    mapped parameters taken from the payload's fields."""
    from mfc.events.names import EVENT_BUS

    if not name.strip():
        raise MfcError("the event NAME cannot be empty")
    fields = parse_payload(payload)
    event_id = publish(load_config(), name, fields)
    click.echo(f"Published event {name} to bus {EVENT_BUS}: {event_id}")
