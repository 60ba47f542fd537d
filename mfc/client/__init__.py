"""The client API: read flows, runs, steps, tasks and artifacts from a datastore, like Metaflow's.

    from mfc import Flow, namespace
    run = Flow("HelloFlow").latest_successful_run
    run.data.greeting            # the end step's artifact, loaded on access
    run["start"].task.stdout

Objects outside the current namespace (default ``user:<you>``) are skipped in listings and raise
:class:`MfcNamespaceMismatch` when named; ``namespace(None)`` shows everything. The datastore root
resolves like the CLI's (``MFC_DATASTORE_ROOT``, the profile, the nearest ``.mfc``) unless
:func:`metadata` pins one.
"""

from __future__ import annotations

from mfc.client.code import RunCode
from mfc.client.data import ArtifactList, DataArtifact, TaskData
from mfc.client.datastore import get_metadata, metadata
from mfc.client.errors import (
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
    MfcNamespaceMismatch,
    MfcNotFound,
    MissingArtifact,
)
from mfc.client.flow import Flow, Metaflow
from mfc.client.namespace import default_namespace, get_namespace, namespace
from mfc.client.run import Run
from mfc.client.step import Step
from mfc.client.task import Task, TaskException
from mfc.exceptions import CorruptArtifact

__all__ = [
    "Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact", "TaskData", "ArtifactList", "TaskException",
    "RunCode", "namespace", "get_namespace", "default_namespace", "metadata", "get_metadata",
    "MfcNotFound", "MfcNamespaceMismatch", "MissingArtifact", "MetaflowNotFound", "MetaflowNamespaceMismatch",
    "CorruptArtifact",
]
