"""mfc: run Metaflow-style flows as local processes, local containers, AWS Batch jobs and Step Functions.

The flow API is importable from here (``from mfc import FlowSpec, step, ...``); the client API
(``Flow``, ``Run``, ``Step``, ``Task``, ``namespace``) is loaded on first use so that a flow's
import stays cheap.
"""

from __future__ import annotations

from typing import Any

from mfc.current import current
from mfc.decorators import (
    batch,
    card,
    catch,
    conda,
    conda_base,
    environment,
    exit_hook,
    project,
    pypi,
    pypi_base,
    resources,
    retry,
    schedule,
    secrets,
    step,
    timeout,
    trigger,
    trigger_on_finish,
)
from mfc.flowspec import FlowSpec
from mfc.parameters import IncludeFile, JSONType, Parameter
from mfc.version import __version__  # noqa: F401 - mfc.__version__, as Metaflow has

_CLIENT_NAMES = {
    "Flow", "Run", "Step", "Task", "DataArtifact", "namespace", "get_namespace",
    "default_namespace", "Metaflow", "get_metadata", "metadata",
}

__all__ = [
    "FlowSpec", "step", "Parameter", "IncludeFile", "JSONType", "current",
    "retry", "catch", "timeout", "environment", "resources", "batch", "card", "schedule", "secrets",
    "project", "pypi", "pypi_base", "conda", "conda_base", "trigger", "trigger_on_finish", "exit_hook",
    "Runner", "NBRunner", "Deployer", "DeployedFlow", "S3", *sorted(_CLIENT_NAMES),
]


def __getattr__(name: str) -> Any:
    if name in ("Runner", "NBRunner", "Deployer", "DeployedFlow"):
        from mfc import api

        return getattr(api, name)
    if name in _CLIENT_NAMES:
        from mfc import client

        return getattr(client, name)
    if name in ("S3", "S3NotFound", "MetaflowS3NotFound"):
        from mfc import datatools

        return getattr(datatools, name)
    raise AttributeError(f"module 'mfc' has no attribute {name!r}")
