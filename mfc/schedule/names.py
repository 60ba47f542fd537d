"""Names of the EventBridge rules and Scheduler schedules mfc makes for a state machine, and the
event bus custom events go to.

A name is ``<state machine>-<kind>`` or ``<state machine>-<kind>-<suffix>``, with only the
characters both services allow (``[.\\-_A-Za-z0-9]``) and at most 64 of them: a longer name keeps
its head and ends in a hash of the whole, so two long names never collide.
"""

from __future__ import annotations

import hashlib
import re

EVENT_BUS = "mfc"
NAME_LIMIT = 64  # EventBridge rules and EventBridge Scheduler schedules
KINDS = ("schedule", "event", "finish")


def rule_name(state_machine_name: str, kind: str, suffix: str = "") -> str:
    """The deterministic name of the ``kind`` rule (``schedule``, ``event``, ``finish``) of a
    state machine; ``suffix`` is the event's or the upstream flow's name."""
    if kind not in KINDS:
        raise ValueError(f"unknown rule kind {kind!r} (kinds: {', '.join(KINDS)})")
    full = "-".join(part for part in (state_machine_name, kind, suffix) if part)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", full)
    if len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{name[:NAME_LIMIT - 11]}-{digest}"
