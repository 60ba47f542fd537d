"""Reading cards back: :func:`get_cards` (Metaflow's ``get_cards``) and ``Task.cards``.

A task's cards are those its latest attempt's record lists (an attempt that failed has none);
their HTML is read from the datastore on first use (``card.html`` / ``card.get()``).
"""

from __future__ import annotations

import os
import tempfile
from html import escape
from typing import TYPE_CHECKING, Any

from mfc.pathspec import is_valid

if TYPE_CHECKING:
    from mfc.client import Task


class Card:
    """One stored card: ``id``, ``type``, ``path`` (its key in the datastore) and ``html``."""

    def __init__(self, blobs: Any, card_id: str, card_type: str, path: str, pathspec: str) -> None:
        self._blobs = blobs
        self._html: str | None = None
        self.id = card_id
        self.type = card_type
        self.path = path
        self.pathspec = pathspec

    @property
    def html(self) -> str:
        """The card's HTML page (read once, then kept)."""
        if self._html is None:
            self._html = self._blobs.get_bytes(self.path).decode("utf-8", "replace")
        return self._html

    def get(self) -> str:
        """The card's HTML (Metaflow's name)."""
        return self.html

    def write_temp(self) -> str:
        """Write the card to a new temporary ``.html`` file and return its path."""
        fd, path = tempfile.mkstemp(prefix=f"mfc-card-{self.id}-", suffix=".html")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.html)
        return path

    def view(self) -> str:
        """Open the card in a web browser (``webbrowser``); returns the temporary file's path."""
        import webbrowser

        path = self.write_temp()
        webbrowser.open("file://" + os.path.abspath(path))
        return path

    def _repr_html_(self) -> str:
        # An iframe's srcdoc keeps the card's CSS away from the notebook's page, and its away from the card.
        return (f"<iframe srcdoc=\"{escape(self.html, quote=True)}\" title=\"{escape(self.id, quote=True)}\" "
                "style=\"width:100%;height:600px;border:1px solid #d0d7de\" sandbox></iframe>")

    def __repr__(self) -> str:
        return f"<Card {self.id} ({self.type}) of {self.pathspec}>"


class CardContainer(list):
    """The cards of a task (a list of :class:`Card`); a notebook shows each."""

    def _repr_html_(self) -> str:
        if not self:
            return "<div>no cards</div>"
        return "".join(card._repr_html_() for card in self)


def task_cards(task: Task, id: str | None = None, type: str | None = None) -> CardContainer:  # noqa: A002
    """The cards of ``task``'s latest attempt, those with ``id``/``type`` when given."""
    record = task._record or {}
    flow = task.path_components[0]
    found = CardContainer()
    for entry in record.get("cards") or []:
        card_id, card_type, key = entry.get("id"), entry.get("type"), entry.get("key")
        # Only card files of this flow's tasks are read (in a resumed run: the origin task's).
        parts = key.split("/") if isinstance(key, str) else []
        if not (is_valid(card_id, "task id") and isinstance(card_type, str) and len(parts) == 5
                and parts[0] == flow and is_valid(parts[1], "run id") and is_valid(parts[2], "step")
                and is_valid(parts[3], "task id")
                and parts[4].endswith(f".card.{card_id}.html")):
            continue
        if (id is None or card_id == id) and (type is None or card_type == type):
            found.append(Card(task._ds.blobs, card_id, card_type, key, task.pathspec))
    return found


def get_cards(task: str | Task, id: str | None = None, type: str | None = None,  # noqa: A002 - Metaflow's names
              follow_resumed: bool = True) -> CardContainer:
    """The cards of a task (a ``Task`` or its pathspec ``Flow/run/step/task``), only those with
    ``id`` or ``type`` when given. ``follow_resumed`` is accepted: a resumed task's record already
    points at its origin's cards."""
    if isinstance(task, str):
        from mfc.client import Task

        task = Task(task, False)
    return task_cards(task, id, type)
