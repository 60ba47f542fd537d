"""Cards: Metaflow's ``@card`` reports on mfc (``from mfc.cards import Markdown, Table, Image,
Artifact``).

A step decorated with ``@card`` gets a card when it succeeds: an HTML page stored with the task
as ``<Flow>/<run>/<step>/<task>/<attempt>.card.<id>.html`` and listed in the attempt record's
``cards``. The ``default`` type shows the task's artifacts, then whatever the step appended with
``current.card.append(...)``; ``blank`` shows only what was appended. Unlike Metaflow's cards,
which render JSON with a JavaScript bundle, these are plain self-contained HTML (inline CSS,
images as ``data:`` URIs, no scripts, no network). Read them with :func:`get_cards`,
``Task.cards``, or ``mfc card view|get|list PATHSPEC``.
"""

from __future__ import annotations

from mfc.cards.client import Card, CardContainer, get_cards
from mfc.cards.components import Artifact, CardComponent, Error, Image, Markdown, MetaflowCardComponent, Table
from mfc.cards.types import BlankCard, CardTask, DefaultCard, MetaflowCard, register_card_type

__all__ = [
    "Markdown", "Table", "Image", "Artifact", "Error", "CardComponent", "MetaflowCardComponent",
    "MetaflowCard", "DefaultCard", "BlankCard", "CardTask", "register_card_type", "Card", "CardContainer", "get_cards",
]
