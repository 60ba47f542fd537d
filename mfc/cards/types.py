"""Card types: ``default`` (the task's artifacts, then the components the step appended) and
``blank`` (only the appended components), in a registry that more types can join
(:func:`register_card_type`), as Metaflow's card extensions do.

A card type renders a whole page from a :class:`CardTask` (what the task left: pathspec, attempt,
artifacts with short previews) and the components the step gave it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mfc.cards.components import render_component
from mfc.cards.html import error_block, page, text


@dataclass
class CardArtifact:
    """One artifact as a card shows it; ``preview()`` is a short repr (or why there is none)."""

    name: str
    type: str
    size: int
    preview: Callable[[], str]


@dataclass
class CardTask:
    """The task a card describes."""

    pathspec: str
    attempt: int
    artifacts: list[CardArtifact] = field(default_factory=list)

    @property
    def meta(self) -> str:
        return f"attempt {self.attempt}"


class MetaflowCard:
    """The base of card types. ``type`` names it in ``@card(type=...)``; with
    ``ALLOW_USER_COMPONENTS`` the step may ``current.card.append(...)`` to it. ``render`` returns
    the whole HTML page."""

    type = ""
    ALLOW_USER_COMPONENTS = False

    def __init__(self, options: dict[str, Any] | None = None, components: list[Any] | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.options = dict(options or {})
        self.components = list(components or [])
        self.warn = warn

    def render_components(self) -> str:
        """The appended components' HTML, in order (a failing one shows its error in place)."""
        return "".join(render_component(c, self.warn) for c in self.components)

    def render(self, task: CardTask) -> str:
        raise NotImplementedError


class BlankCard(MetaflowCard):
    """Only the components the step appended."""

    type = "blank"
    ALLOW_USER_COMPONENTS = True

    def render(self, task: CardTask) -> str:
        return page(task.pathspec, task.meta, self.render_components())


class DefaultCard(MetaflowCard):
    """The task's artifacts (name, type, size, a short preview of the value), then the components
    the step appended."""

    type = "default"
    ALLOW_USER_COMPONENTS = True

    def render(self, task: CardTask) -> str:
        from mfc.client.render import format_size

        rows = "".join(f"<tr><td>{text(a.name)}</td><td>{text(a.type)}</td><td>{text(format_size(a.size))}</td>"
                       f"<td><pre>{text(a.preview())}</pre></td></tr>" for a in task.artifacts)
        table = (f"<table><thead><tr><th>artifact</th><th>type</th><th>size</th><th>value</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>") if rows else "<p>This task has no artifacts.</p>"
        body = f"<section><h2>Artifacts</h2>{table}</section>"
        appended = self.render_components()
        if appended:
            body += f"<section><h2>Components</h2>{appended}</section>"
        return page(f"Task {task.pathspec}", task.meta, body)


CARD_TYPES: dict[str, type[MetaflowCard]] = {cls.type: cls for cls in (DefaultCard, BlankCard)}


def register_card_type(cls: type[MetaflowCard]) -> type[MetaflowCard]:
    """Make ``cls`` usable as ``@card(type=cls.type)`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, MetaflowCard)) or not cls.type:
        raise TypeError("a card type is a MetaflowCard subclass with a non-empty `type`")
    CARD_TYPES[cls.type] = cls
    return cls


def card_class(name: str) -> type[MetaflowCard] | None:
    """The card type registered as ``name``."""
    return CARD_TYPES.get(name)


def error_card(task: CardTask, card_id: str, title: str, detail: str) -> str:
    """The page stored instead of a card that could not be rendered."""
    return page(f"Card {card_id} of {task.pathspec}", task.meta, error_block(title, detail))
