"""Names of the EventBridge rules and Scheduler schedules that start a deployed flow.

Both kinds of name are at most 64 characters of ``[.\\-_A-Za-z0-9]``. A name is
``<state machine>-<kind>[-<suffix>]``; one that had to be cut, or whose characters had to be
replaced, ends in a hash of the whole, so two names never collide.
"""

from __future__ import annotations

import hashlib
import re

EVENT_BUS = "mfc"  # the custom event bus of `mfc event publish` and the @trigger rules
NAME_LIMIT = 64  # EventBridge rule names and Scheduler schedule names
KINDS = ("schedule", "event", "finish")


def rule_name(state_machine_name: str, kind: str, suffix: str = "") -> str:
    """The rule (or Scheduler schedule) of ``kind`` for ``state_machine_name``: ``schedule`` (the
    flow's schedule), ``event`` (suffix: the @trigger event's name) or ``finish`` (suffix: the
    upstream flow's name)."""
    if kind not in KINDS:
        raise ValueError(f"unknown rule kind {kind!r} (one of {', '.join(KINDS)})")
    full = "-".join(p for p in (state_machine_name, kind, suffix) if p)
    name = re.sub(r"[^.\-_A-Za-z0-9]", "-", full)
    if len(name) <= NAME_LIMIT and name == full:
        return name
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{name[:NAME_LIMIT - len(digest) - 1]}-{digest}"
