"""Namespaces: which runs the client shows.

The default namespace is ``user:<user>`` (the ``user`` setting, default the login name); a run
is in namespace ``ns`` when ``ns`` is one of its system or user tags. ``namespace(None)`` shows
every run.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class _Unset(enum.Enum):
    UNSET = enum.auto()  # no namespace chosen yet: the default one applies


_UNSET = _Unset.UNSET
_current: str | None | _Unset = _UNSET


def default_namespace() -> str:
    """Go back to the default namespace (``user:<user>``) and return it."""
    global _current
    from mfc.config import Config

    _current = f"user:{Config()['user']}"
    return _current


def namespace(ns: str | None) -> str | None:
    """Switch the namespace: a tag such as ``user:alice`` or ``project:x``, or ``None`` for all runs."""
    global _current
    if ns is not None and (not isinstance(ns, str) or not ns):
        raise TypeError(f"namespace must be a non-empty string or None, got {ns!r}")
    _current = ns
    return ns


def get_namespace() -> str | None:
    """The current namespace (``None``: every run)."""
    if _current is _UNSET:
        return default_namespace()
    return _current


def in_namespace(tags: Iterable[str], ns: str | None) -> bool:
    """True if an object carrying ``tags`` is visible in namespace ``ns``."""
    return ns is None or ns in set(tags)
