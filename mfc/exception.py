"""Metaflow's exception names, for code that imports them as ``from metaflow.exception import ...``.

Each is the mfc class raised in the same situation: ``MetaflowException`` is the base of every user
error (:class:`mfc.exceptions.MfcError`), ``MetaflowNotFound`` what the client raises for a flow,
run, step, task or artifact that is not there (also a ``KeyError``), ``MetaflowNamespaceMismatch``
for one outside the current namespace, ``MetaflowTaggingError`` for an invalid tag,
``MetaflowInvalidPathspec`` for a pathspec outside the grammar (:mod:`mfc.pathspec`).
"""

from __future__ import annotations

from mfc.client.errors import MetaflowNamespaceMismatch, MetaflowNotFound
from mfc.exceptions import MfcError as MetaflowException
from mfc.pathspec import InvalidPathspec as MetaflowInvalidPathspec
from mfc.tags import InvalidTag as MetaflowTaggingError

__all__ = [
    "MetaflowException", "MetaflowNotFound", "MetaflowNamespaceMismatch", "MetaflowTaggingError", "MetaflowInvalidPathspec",
]
