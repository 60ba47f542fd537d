"""Errors raised by the client API. All are :class:`mfc.exceptions.MfcError` subclasses, so the CLI
prints them as one line; the Metaflow names are aliases for code written against Metaflow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mfc.exceptions import MfcError
from mfc.pathspec import InvalidPathspec


class MfcNotFound(MfcError, KeyError):
    """A flow, run, step, task or artifact that is not in the datastore. Also a KeyError, as
    Metaflow's ``run["nope"]`` raises one (code written for Metaflow catches KeyError); its str is
    still the one-line message."""


class MfcNamespaceMismatch(MfcError):
    """An object that exists but lies outside the current namespace."""


class MissingArtifact(MfcNotFound, AttributeError):
    """A task has no artifact of that name (also an AttributeError, so ``hasattr`` and
    ``getattr(task.data, name, default)`` work)."""


@contextmanager
def lookup() -> Iterator[None]:
    """``obj[id]`` with an id outside the pathspec grammar finds nothing: a KeyError (as every
    failed lookup is, in Metaflow too) carrying the grammar's message."""
    try:
        yield
    except InvalidPathspec as exc:
        raise MfcNotFound(str(exc)) from None


MetaflowNotFound = MfcNotFound
MetaflowNamespaceMismatch = MfcNamespaceMismatch

__all__ = ["MfcNotFound", "MfcNamespaceMismatch", "MissingArtifact", "lookup", "MetaflowNotFound",
           "MetaflowNamespaceMismatch"]
