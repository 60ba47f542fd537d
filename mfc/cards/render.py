"""Rendering a task's cards, in the task entrypoint (so the same in every executor), after its
artifacts are stored and before its attempt record is written. Only a step with ``@card`` comes
here: a task without one never imports :mod:`mfc.cards`.

A card is rendered only when the task succeeded (``@catch`` included), as Metaflow renders cards
in ``task_finished`` only when the task is ok: a failed attempt has no card. A card that raises
while rendering, or takes longer than its ``@card(timeout=...)``, is stored as an error card
saying so, with a warning on the task's stderr; the task itself still succeeds.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

from mfc.cards.collector import CardCollector, CardSlot, warn
from mfc.cards.components import CardComponent
from mfc.cards.html import error_block, short_repr
from mfc.cards.types import CardArtifact, CardTask, card_class, error_card
from mfc.client.render import PREVIEW_MAX_STORED
from mfc.current import current


def preload() -> None:
    """Import what rendering needs beyond this module (Markdown's parser, the client's formatting),
    for a process that forks the tasks of a flow with cards, so they need not import it each."""
    import mfc.client.render  # noqa: F401

    try:
        import markdown_it  # noqa: F401
    except ImportError:
        pass  # Markdown then shows its text unformatted


def start_cards(decorators: list[Any]) -> CardCollector:
    """Bind ``current.card`` to a collector for the step's ``@card`` decorators."""
    collector = CardCollector([dict(d.attributes) for d in decorators])
    current._set_card(collector)
    return collector


def _preview(values: dict[str, Any], name: str, ref: list, store: Any) -> Any:
    if name in values:
        return lambda: short_repr(values[name])
    sha, size, kind = ref[0], ref[1], ref[2]

    def load() -> str:
        if size > PREVIEW_MAX_STORED:
            return f"<{kind}, not loaded: {size} bytes stored>"
        try:
            return short_repr(store.load(sha))
        except Exception as exc:  # noqa: BLE001 - an unloadable value is described, the card still renders
            return f"<{kind}: cannot load: {type(exc).__name__}: {exc}>"

    return load


def card_task(pathspec: str, attempt: int, flow: Any, artifacts: dict[str, list], store: Any) -> CardTask:
    """What the cards show of the task: its stored artifacts, previewed from the values still in
    memory (the step's own) or loaded (inherited ones, when small)."""
    values = dict(flow.__dict__) if flow is not None else {}
    shown = [CardArtifact(name, ref[2], ref[1], _preview(values, name, ref, store))
             for name, ref in sorted(artifacts.items()) if not name.startswith("_")]
    return CardTask(pathspec, attempt, shown)


class _Warning(CardComponent):
    def __init__(self, message: str) -> None:
        self._message = message

    def render(self) -> str:
        return error_block("@card WARNING", self._message)


def _render_one(slot: CardSlot, task: CardTask, warnings: list[str]) -> str:
    cls = card_class(slot.type)
    if cls is None:
        from mfc.cards.types import CARD_TYPES

        known = ", ".join(sorted(CARD_TYPES))
        raise LookupError(f"no card type {slot.type!r} (known: {known})")
    card = cls(slot.attributes.get("options"), slot.components, warn=lambda m: warn(f"card {slot.card_id}: {m}"))
    if warnings:  # as Metaflow does, what current.card warned about is shown in every card too
        card.components = [_Warning(w) for w in warnings] + card.components
    html = card.render(task)
    if not isinstance(html, str):
        raise TypeError(f"{cls.__name__}.render returned a {type(html).__name__}, not a str")
    return html


def render_card(slot: CardSlot, task: CardTask, warnings: list[str]) -> str:
    """One card's HTML, or its error card (a render that raised, or ran past the timeout)."""
    timeout = float(slot.attributes.get("timeout") or 45)
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["html"] = _render_one(slot, task, warnings)
        except Exception:  # noqa: BLE001 - reported in the card, never fails the task
            result["error"] = traceback.format_exc()

    # A daemon thread: a render past its timeout is left behind and ends with the task's process.
    worker = threading.Thread(target=work, name=f"card-{slot.card_id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        title = f"rendering card {slot.card_id} took longer than its timeout ({timeout:g} s) and was cut off"
        warn(f"{title}; raise @card(timeout=...) to give it longer")
        return error_card(task, slot.card_id, title, "@card(timeout=...) limits how long a card may take to render")
    if "error" in result:
        last = result["error"].strip().splitlines()[-1]
        warn(f"card {slot.card_id} ({slot.type}) failed to render: {last}; the card shows the error")
        return error_card(task, slot.card_id, f"card {slot.card_id} ({slot.type}) failed to render", result["error"])
    return str(result["html"])


def finish_cards(collector: CardCollector, task: CardTask, records: Any, run_id: str, step: str, task_id: str,
                 attempt: int) -> list[dict[str, Any]]:
    """Render every card of the step, store each as ``<attempt>.card.<id>.html`` beside the task's
    records (one batch) and return the attempt record's ``cards`` list."""
    entries, blobs = [], {}
    for slot in collector.slots:
        key = records.key(run_id, step, task_id, attempt, f"card.{slot.card_id}.html")
        blobs[key] = render_card(slot, task, collector.warnings).encode("utf-8")
        entries.append({"id": slot.card_id, "type": slot.type, "key": key})
    records.blobs.put_many(blobs)
    return entries
