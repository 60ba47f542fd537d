"""Errors raised by the client API. All are :class:`mfc.exceptions.MfcError` subclasses, so the CLI
prints them as one line; the Metaflow names are aliases for code written against Metaflow."""

from __future__ import annotations

from mfc.exceptions import MfcError


class MfcNotFound(MfcError, KeyError):
    """A flow, run, step, task or artifact that is not in the datastore. Also a KeyError, as
    Metaflow's ``run["nope"]`` raises one (code written for Metaflow catches KeyError); its str is
    still the one-line message."""


class MfcNamespaceMismatch(MfcError):
    """An object that exists but lies outside the current namespace."""


class MissingArtifact(MfcNotFound, AttributeError):
    """A task has no artifact of that name (also an AttributeError, so ``hasattr`` and
    ``getattr(task.data, name, default)`` work)."""


MetaflowNotFound = MfcNotFound
MetaflowNamespaceMismatch = MfcNamespaceMismatch

__all__ = ["MfcNotFound", "MfcNamespaceMismatch", "MissingArtifact", "MetaflowNotFound",
           "MetaflowNamespaceMismatch"]
