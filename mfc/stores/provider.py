"""The metadata provider interface: what every reader and writer of runs goes through.

A provider keeps runs (create, read, list, finish), their tags, status and leases, and hands
out the task records of a flow (steps, tasks and attempts are listed and read through it). The
local provider (:class:`mfc.stores.metadata.BlobMetadata`) keeps JSON records next to the data
in the datastore; a service provider implements the same methods. Which one is used is the
``metadata`` setting (:mod:`mfc.config`), resolved by :func:`open_metadata`, which also lets
readers ask Step Functions about the runs its executions drive (:mod:`mfc.sfn.status`).
"""

from __future__ import annotations

import abc
import functools
import importlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mfc.exceptions import MalformedRecord, MfcError, warn

if TYPE_CHECKING:
    from mfc.config import Config
    from mfc.stores.blob import BlobStore
    from mfc.stores.records import TaskRecords
    from mfc.stores.runstatus import RunState

# A run as :meth:`MetadataProvider.runs` reads it: its merged record, None when the run has no
# record (yet), or the MalformedRecord that kept it from being read.
RunRead = dict[str, Any] | MalformedRecord | None

# Provider name (the ``metadata`` setting) -> "module:class" of its implementation.
PROVIDERS = {"local": "mfc.stores.metadata:BlobMetadata", "service": "mfc.stores.service_metadata:ServiceMetadata"}

# What a reader is told of the Step Functions execution that drives a run: the run record's
# ``driver`` -> the ``execution`` fact of :func:`mfc.stores.runstatus.run_state`, None when it cannot ask.
ExecutionProbe = Callable[[dict[str, Any]], "dict[str, Any] | None"]

FIRST_PAGE, LAST_PAGE = 8, 256  # runs read per batch by read_runs: few first (latest_run), doubling


class MetadataProvider(abc.ABC):
    """Runs, their status, tags and leases, and the task records of their steps. A provider is
    made from the datastore's blob store, which keeps the artifacts, task records and logs."""

    # Asks Step Functions how a run's execution stands when the run has no final status (readers
    # only: a task must not call Step Functions for its run's status). None: not asked.
    execution_probe: ExecutionProbe | None = None

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def task_environment(self) -> dict[str, str]:
        """Variables a run exports to its tasks (processes, containers, Batch jobs) so that they
        record through this provider too (the local one says so, overriding an ``MFC_METADATA``
        of the environment that the run fell back from)."""
        return {"MFC_METADATA": "local"}

    # -- runs ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, flow: str, info: dict[str, Any], run_id: str | None = None) -> str:
        """Record a run and return its id. Without ``run_id`` a new id is claimed (never one in
        use); with one, the run is created under that id, or, if it exists already with the same
        content (``created_at`` aside), left as it is; RunExists if its content differs."""

    @abc.abstractmethod
    def finish_run(self, flow: str, run_id: str, status: str, info: dict[str, Any] | None = None) -> None:
        """Record the run's final status (``succeeded``, ``failed``, ``interrupted``)."""

    @abc.abstractmethod
    def run(self, flow: str, run_id: str) -> dict[str, Any] | None:
        """The run's record merged with its status and tags; None if there is no such run;
        MalformedRecord if one of its records is damaged."""

    @abc.abstractmethod
    def runs(self, flow: str, run_ids: Sequence[str]) -> list[tuple[str, RunRead]]:
        """:meth:`run` of several runs, read together (a damaged run is returned as its
        MalformedRecord, not raised), in the order given."""

    @abc.abstractmethod
    def run_ids(self, flow: str) -> list[str]:
        """Run ids of a flow, newest first."""

    @abc.abstractmethod
    def flows(self) -> list[str]:
        """Names of the flows with anything recorded, sorted."""

    @abc.abstractmethod
    def run_exists(self, flow: str, run_id: str) -> bool:
        """Whether anything of the run is recorded (a run record, even a damaged one, or a task)."""

    # -- status and leases --------------------------------------------------------------------
    @abc.abstractmethod
    def facts(self, flow: str, run_id: str) -> dict[str, dict[str, Any] | None]:
        """The run's ``run``, ``status`` and ``lease`` records (None where missing or unreadable)."""

    @abc.abstractmethod
    def state(self, flow: str, run_id: str, record: dict[str, Any] | None = None, final: Any = ...,
              lease: Any = ...) -> RunState:
        """The run's status from its facts (:func:`mfc.stores.runstatus.run_state`); facts the
        caller has read already may be passed in."""

    @abc.abstractmethod
    def write_lease(self, flow: str, run_id: str, lease: dict[str, Any]) -> None:
        """Write a heartbeat of the process driving the run."""

    @abc.abstractmethod
    def drop_lease(self, flow: str, run_id: str) -> None:
        """Remove the run's heartbeat record (a scratch run's)."""

    # -- tags ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def update_tags(self, flow: str, run_id: str, add: Iterable[str] = (), remove: Iterable[str] = (),
                    check: Callable[[list[str], list[str]], None] | None = None) -> list[str]:
        """Add and remove user tags, safely with concurrent writers; returns the tags after."""

    # -- steps, tasks, attempts ---------------------------------------------------------------
    @abc.abstractmethod
    def records(self, flow: str) -> TaskRecords:
        """The task records of a flow (attempt records and logs)."""

    @abc.abstractmethod
    def steps(self, flow: str, run_id: str, internal: bool = False) -> list[str]:
        """The run's steps with tasks, sorted; ``internal`` adds mfc's own (``_parameters``)."""

    def tasks(self, flow: str, run_id: str, step: str) -> list[str]:
        """Task ids of a step."""
        return self.records(flow).tasks(run_id, step)

    def attempts(self, flow: str, run_id: str, step: str, task_id: str) -> list[int]:
        """Attempt numbers of a task with a record or a log, ascending."""
        return self.records(flow).attempts(run_id, step, task_id)

    def attempt(self, flow: str, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any] | None:
        """One attempt's record, None while there is none."""
        return self.records(flow).read(run_id, step, task_id, attempt)

    def latest(self, flow: str, run_id: str, step: str, task_id: str) -> dict[str, Any] | None:
        """The record of the task's last finished attempt."""
        return self.records(flow).latest(run_id, step, task_id)


def read_runs(metadata: MetadataProvider, flow: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The runs of ``flow`` with their merged records, newest first, read in batches of growing
    size. A run with a damaged record is left out with a warning; one without a record yet
    (being created) is skipped."""
    ids = metadata.run_ids(flow)
    start, size = 0, FIRST_PAGE
    while start < len(ids):
        for run_id, record in metadata.runs(flow, ids[start:start + size]):
            if isinstance(record, MalformedRecord):
                warn(f"{record}; run {flow}/{run_id} is left out")
            elif record is not None:
                yield run_id, record
        start, size = start + size, min(size * 2, LAST_PAGE)


class RunExists(MfcError):
    """A run id given to :meth:`MetadataProvider.create_run` is taken by a different run."""


def provider_class(kind: str, source: str = "") -> type[MetadataProvider]:
    """The implementation of the provider named ``kind`` (MfcError naming the setting if none)."""
    target = PROVIDERS.get(kind)
    if target is None:
        where = f" from {source}" if source else ""
        raise MfcError(f"metadata{where}: no metadata provider {kind!r} (known: {', '.join(PROVIDERS)})")
    module, name = target.split(":")
    found: type[MetadataProvider] = getattr(importlib.import_module(module), name)
    return found


def open_metadata(blobs: BlobStore, config: Config | str | None = None) -> MetadataProvider:
    """The metadata provider of a datastore: the one the ``metadata`` setting of ``config`` names
    (or the name given; default ``local``). Given a resolved config (a reader's), it asks Step
    Functions, in the account and endpoint that config reaches, about a run an execution drives
    that has no final status; mfc.sfn and boto3 load only when such a run is read."""
    if config is None or isinstance(config, str):
        return provider_class(config or "local")(blobs)
    cls = provider_class(config["metadata"], config.sources.get("metadata", ""))
    from_config = getattr(cls, "from_config", None)
    provider = from_config(blobs, config) if from_config is not None else cls(blobs)
    provider.execution_probe = functools.partial(_ask_execution, config)
    return provider


def _ask_execution(config: Config, driver: dict[str, Any]) -> dict[str, Any] | None:
    from mfc.sfn.status import execution_status

    return execution_status(driver, config)
