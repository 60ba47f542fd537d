"""``current.card`` in a step with ``@card``: which card ``append`` goes to, and ``current.card["id"]``
for the others, by Metaflow's rules (see :class:`CardCollector`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mfc.cards.types import card_class


def warn(message: str) -> None:
    """A card warning on the task's stderr (Metaflow's ``[@card WARNING]`` prefix)."""
    print(f"[@card WARNING] {message}", file=sys.stderr, flush=True)


@dataclass
class CardSlot:
    """One ``@card`` of the running step: its id, type, decorator arguments and components."""

    card_id: str
    type: str
    attributes: dict[str, Any]
    user_id: str | None
    components: list[Any] = field(default_factory=list)

    @property
    def editable(self) -> bool:
        cls = card_class(self.type)
        return cls is not None and cls.ALLOW_USER_COMPONENTS


class CardComponents:
    """The components of one card: ``append``, ``extend``, ``clear``, ``components``, iteration
    (Metaflow's ``CardComponentManager``). ``refresh`` does nothing: cards are rendered once,
    when the task has ended."""

    def __init__(self, slot: CardSlot) -> None:
        self._slot = slot

    def append(self, component: Any, id: str | None = None) -> None:  # noqa: A002 - Metaflow's name
        if id is not None:
            component.component_id = id
        self._slot.components.append(component)

    def extend(self, components: Iterable[Any]) -> None:
        self._slot.components.extend(components)

    def clear(self) -> None:
        self._slot.components.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Accepted for Metaflow's flows; mfc cards are not updated while the task runs."""

    @property
    def components(self) -> list[Any]:
        return self._slot.components

    def __iter__(self) -> Iterator[Any]:
        return iter(self._slot.components)

    def __len__(self) -> int:
        return len(self._slot.components)


def assign_ids(specs: list[dict[str, Any]]) -> list[str]:
    """Each card's id: its ``id=``, else its type for the first card of that type, then
    ``<type>-2``, ``<type>-3``, ... (skipping ids already taken)."""
    taken = {s["id"] for s in specs if s.get("id")}
    out: list[str] = []
    for spec in specs:
        if spec.get("id"):
            out.append(spec["id"])
            continue
        candidate, n = spec["type"], 1
        while candidate in taken:
            n += 1
            candidate = f"{spec['type']}-{n}"
        taken.add(candidate)
        out.append(candidate)
    return out


class CardCollector:
    """``current.card`` of a step with ``@card``, by Metaflow's rules: ``append``/``extend`` go to
    the one editable card (a ``default`` or ``blank`` card), else to the one editable card without
    an ``id``, else to the one with ``customize=True``; when none is singled out they warn once and
    do nothing. ``current.card["id"]`` is the card with that ``id=``; an unknown id warns once and
    gives a throwaway list."""

    def __init__(self, attributes: list[dict[str, Any]]) -> None:
        ids = assign_ids(attributes)
        self.slots = [CardSlot(card_id, a["type"], a, a.get("id")) for card_id, a in zip(ids, attributes, strict=True)]
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self._by_id = {s.user_id: s for s in self.slots if s.user_id}
        self._default = self._pick_default()

    def _pick_default(self) -> CardSlot | None:
        editable = [s for s in self.slots if s.editable]
        if len(editable) == 1:
            return editable[0]
        customized = [s for s in editable if str(s.attributes.get("customize")) == "True"]
        if len(customized) == 1:
            return customized[0]
        unnamed = [s for s in editable if s.user_id is None]
        return unnamed[0] if len(unnamed) == 1 else None

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(message)
        warn(message)

    def _target(self, call: str) -> CardComponents | None:
        if self._default is not None:
            return CardComponents(self._default)
        if len(self.slots) == 1:
            why = (f"card type {self.slots[0].type!r} does not exist" if card_class(self.slots[0].type) is None
                   else f"a card of type {self.slots[0].type!r} takes no components")
        else:
            why = "it cannot tell which of the step's @card decorators is meant; give each an id= and use current.card[ID]"
        self._warn_once(call, f"current.card.{call} is ignored: {why}")
        return None

    def append(self, component: Any, id: str | None = None) -> None:  # noqa: A002 - Metaflow's name
        """Add a component to the step's default editable card."""
        target = self._target("append")
        if target is not None:
            target.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        """Add components to the step's default editable card."""
        target = self._target("extend")
        if target is not None:
            target.extend(components)

    def clear(self) -> None:
        """Remove the default editable card's components."""
        if self._default is not None:
            self._default.components.clear()

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Accepted for Metaflow's flows; mfc cards are rendered once, when the task ends."""

    @property
    def components(self) -> list[Any] | None:
        """The default editable card's components (None, with a warning, when there is none)."""
        target = self._target("components")
        return target.components if target is not None else None

    def get(self, type: str | None = None) -> list[CardComponents]:  # noqa: A002 - Metaflow's name
        """The components of every card of ``type``."""
        return [CardComponents(s) for s in self.slots if s.type == type]

    def __getitem__(self, key: str) -> CardComponents | list:
        slot = self._by_id.get(key)
        if slot is not None:
            return CardComponents(slot)
        ids = ", ".join(sorted(self._by_id)) or "none"
        self._warn_once(f"get:{key}", f"current.card[{key!r}] is not a card of this step (card ids: {ids}); set "
                                      f"@card(id={key!r}) to use it. What is added to it is not shown anywhere")
        return []

    def __setitem__(self, key: str, value: list[Any]) -> None:
        slot = self._by_id.get(key)
        if slot is None or not isinstance(value, list):
            self._warn_once(f"set:{key}", f"current.card[{key!r}] = ... is ignored: no card has id {key!r}, "
                                          "or the value is not a list of components")
            return
        slot.components = list(value)
