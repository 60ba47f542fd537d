"""The service metadata provider (``metadata = "service"``): runs recorded in the metadata service
(:mod:`mfc.service`), shared by a team, as well as in the datastore.

Every record is written where the local provider writes it (the datastore stays the source of
truth: a run, its tasks and artifacts can be read without the service) and then to the service,
which indexes runs, tasks, attempts, artifacts, cards and leases for listings, the web UI and
notebooks. Reads of runs (listings, a run's merged record and status) come from the service; a
task's records, artifacts and logs from the datastore.

The run id is claimed in the service first (its unique index serialises concurrent creators on
any number of machines), then recorded under that id in the datastore. Task attempts are
registered when they start (so the UI shows what runs, with its foreach index and item) and
completed with their record when they end. Tasks find the service through ``MFC_METADATA``,
``MFC_SERVICE_URL`` and ``MFC_SERVICE_TOKEN``, which a run exports to its tasks on every backend
(:func:`metadata_env`).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mfc.exceptions import MfcError, warn
from mfc.stores.metadata import BlobMetadata
from mfc.stores.provider import ExecutionProbe, RunExists, RunRead
from mfc.stores.records import TaskRecords
from mfc.stores.service_client import ServiceClient, ServiceError, quoted
from mfc.stores.taskrecord import TaskRecord

if TYPE_CHECKING:
    from mfc.config import Config
    from mfc.stores.blob import BlobStore

ITEM_CHARS = 200  # of a foreach item's repr kept in the service


def service_env(url: str, token: str | None) -> dict[str, str]:
    """The variables that make a task (a process, a container, a Batch job) record into the
    metadata service at ``url`` (read back by :func:`task_records` and :func:`task_metadata`)."""
    env = {"MFC_METADATA": "service", "MFC_SERVICE_URL": url}
    if token:
        env["MFC_SERVICE_TOKEN"] = token
    return env


def metadata_env(config: Config | Any) -> dict[str, str]:
    """:func:`service_env` of the service a config names; none for the local provider."""
    if config["metadata"] != "service":
        return {}
    return service_env(str(config["service_url"] or ""), config["service_token"])


def client_from_env() -> ServiceClient:
    """The client of the service a run exported to its tasks (:func:`service_env`)."""
    return ServiceClient(os.environ.get("MFC_SERVICE_URL", ""), os.environ.get("MFC_SERVICE_TOKEN"))


def client_from_config(config: Config | Any) -> ServiceClient:
    """The service client the config names (MfcError naming the setting when it has no URL)."""
    url = config["service_url"]
    if not url:
        raise MfcError("metadata = \"service\" needs service_url (the metadata service's URL)",
                       hint="set service_url in your profile or MFC_SERVICE_URL, e.g. http://127.0.0.1:8642")
    return ServiceClient(str(url), config["service_token"])


def _run_path(flow: str, run_id: str, *rest: str) -> str:
    return "/api/v1/flows/" + quoted(flow, "runs", run_id, *rest)


class ServiceMetadata(BlobMetadata):
    """Runs in the metadata service, mirrored in the datastore (see the module docstring)."""

    def __init__(self, blobs: BlobStore, client: ServiceClient | None = None,
                 execution_probe: ExecutionProbe | None = None) -> None:
        super().__init__(blobs, execution_probe)
        self.client = client if client is not None else client_from_env()

    @classmethod
    def from_config(cls, blobs: BlobStore, config: Config) -> BlobMetadata:
        """The provider of a run or a reader: the service the config names, checked at once (a
        service that cannot be reached, or refuses the token, is one clear error), or, with
        ``service_fallback``, the local provider after a warning."""
        client = client_from_config(config)
        try:
            client.whoami()
        except ServiceError as exc:
            if not config["service_fallback"]:
                raise
            warn(f"{exc}; recording in the datastore only (service_fallback is set)")
            return BlobMetadata(blobs)
        return cls(blobs, client)

    def task_environment(self) -> dict[str, str]:
        return service_env(self.client.url, self.client.token)

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, flow: str, info: dict[str, Any], run_id: str | None = None) -> str:
        info = {**info, "trigger": info.get("trigger") or {"kind": "manual"}}
        try:
            answer = self.client.post("/api/v1/flows/" + quoted(flow, "runs"), {"run_id": run_id, "info": info})
        except ServiceError as exc:
            if exc.status == 409:
                detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
                raise RunExists(f"run {flow}/{run_id} exists already in the metadata service with different "
                                f"content: {detail}", hint="give another run id, or the same parameters and settings") from None
            raise
        claimed = str(answer["run_id"])
        return super().create_run(flow, info, claimed)

    def finish_run(self, flow: str, run_id: str, status: str, info: dict[str, Any] | None = None) -> None:
        super().finish_run(flow, run_id, status, info)
        try:
            self.client.put(_run_path(flow, run_id, "final"), {**(info or {}), "status": status})
        except ServiceError as exc:  # the datastore's final record stands: the run's outcome is not lost
            warn(f"{exc}; run {flow}/{run_id} ended {status}, recorded in the datastore but not in the metadata service")

    def write_lease(self, flow: str, run_id: str, lease: dict[str, Any]) -> None:
        super().write_lease(flow, run_id, lease)
        try:
            self.client.put(_run_path(flow, run_id, "lease"), lease)
        except ServiceError as exc:  # the datastore's heartbeat stands; the next one tries again
            warn(f"{exc}; the run's heartbeat is in the datastore only this time")

    def drop_lease(self, flow: str, run_id: str) -> None:
        super().drop_lease(flow, run_id)
        self.client.delete(_run_path(flow, run_id, "lease"))

    def update_tags(self, flow: str, run_id: str, add: Iterable[str] = (), remove: Iterable[str] = (),
                    check: Callable[[list[str], list[str]], None] | None = None) -> list[str]:
        """Checked by ``check`` and then by the service (which refuses a read-only token) before the
        datastore's tags change; the service then holds what the datastore has."""
        add, remove = list(add), list(remove)
        if check is not None:
            current = self.run(flow, run_id) or {}
            before = list(current.get("tags") or [])
            check(sorted((set(before) - set(remove)) | set(add)), before)
        self.client.post(_run_path(flow, run_id, "tags"), {"add": add, "remove": remove})
        return super().update_tags(flow, run_id, add, remove, check)

    # -- reads: from the service ----------------------------------------------------------------
    def run(self, flow: str, run_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.client.get(_run_path(flow, run_id))
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def runs(self, flow: str, run_ids: Sequence[str]) -> list[tuple[str, RunRead]]:
        if not run_ids:
            return []
        answer = self.client.get("/api/v1/flows/" + quoted(flow, "runs"), ids=",".join(run_ids))
        found = {entry["run_id"]: entry.get("run") for entry in answer["runs"]}
        return [(run_id, found.get(run_id)) for run_id in run_ids]

    def run_ids(self, flow: str) -> list[str]:
        return [str(r) for r in self.client.get("/api/v1/flows/" + quoted(flow, "run-ids"))["run_ids"]]

    def flows(self) -> list[str]:
        return sorted(entry["name"] for entry in self.client.get("/api/v1/flows")["flows"])

    def run_exists(self, flow: str, run_id: str) -> bool:
        return self.run(flow, run_id) is not None or super().run_exists(flow, run_id)

    def records(self, flow: str) -> TaskRecords:
        found = self._records.get(flow)
        if found is None:
            found = self._records[flow] = ServiceTaskRecords(self.blobs, flow, self.client)
        return found


class ServiceTaskRecords(TaskRecords):
    """Task records written to the datastore and registered in the metadata service."""

    def __init__(self, blobs: BlobStore, flow_name: str, client: ServiceClient) -> None:
        super().__init__(blobs, flow_name)
        self.client = client

    def _post(self, run_id: str, entries: list[dict[str, Any]]) -> list[bool]:
        answer = self.client.post(_run_path(self.flow_name, run_id, "attempts"), {"attempts": entries})
        return [bool(w) for w in answer.get("written", [])]

    def _logs(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, str]:
        return {"root": self.blobs.root, **{stream: self.log_key(run_id, step, task_id, attempt, stream)
                                            for stream in ("stdout", "stderr")}}

    def register_start(self, run_id: str, step: str, task_id: str, attempt: int, started_at: float,
                       foreach_index: int | None, item: Callable[[], Any] | None = None) -> None:
        """Tell the service the attempt started (retried with backoff: a service that stays down
        fails the task before its step runs)."""
        text = None
        if item is not None:
            try:
                text = repr(item())[:ITEM_CHARS]
            except Exception:  # noqa: BLE001 - an item that cannot be shown is not the task's failure
                text = None
        self._post(run_id, [{"step": step, "task_id": task_id, "attempt": attempt, "started_at": started_at,
                             "foreach_index": foreach_index, "foreach_item": text, "host": socket.gethostname(),
                             "logs": self._logs(run_id, step, task_id, attempt)}])

    def _entry(self, run_id: str, step: str, task_id: str, attempt: int, record: TaskRecord) -> dict[str, Any]:
        return {"step": step, "task_id": task_id, "attempt": attempt, "record": record.to_dict(),
                "started_at": record.started_at, "finished_at": record.finished_at,
                "logs": self._logs(run_id, step, task_id, attempt)}

    def _mirror(self, run_id: str, entries: list[dict[str, Any]]) -> None:
        """Send what the datastore has recorded; a service that cannot take it after the retries
        leaves the datastore's record as the truth and says so."""
        try:
            self._post(run_id, entries)
        except ServiceError as exc:
            print(f"warning: {exc}; {len(entries)} record(s) of run {self.flow_name}/{run_id} are in the "
                  "datastore but not in the metadata service", file=sys.stderr, flush=True)

    def write(self, run_id: str, step: str, task_id: str, attempt: int, record: TaskRecord | dict[str, Any]) -> bool:
        if not isinstance(record, TaskRecord):
            record = TaskRecord.from_dict(record)
        written = super().write(run_id, step, task_id, attempt, record)
        if written:
            self._mirror(run_id, [self._entry(run_id, step, task_id, attempt, record)])
        return written

    def finish(self, run_id: str, step: str, task_id: str, attempt: int, record: TaskRecord, final: bool) -> bool:
        """The datastore's record and final pointer, then both to the service in one request."""
        if not TaskRecords.write(self, run_id, step, task_id, attempt, record):
            return False
        if final:
            TaskRecords.write_final(self, run_id, step, task_id, attempt)
        self._mirror(run_id, [{**self._entry(run_id, step, task_id, attempt, record), "final": final}])
        return True

    def write_many(self, run_id: str, entries: list[tuple[str, str, int, TaskRecord]]) -> list[bool]:
        written = super().write_many(run_id, entries)
        sent = [self._entry(run_id, s, t, a, r) for (s, t, a, r), w in zip(entries, written, strict=True) if w]
        for start in range(0, len(sent), 500):
            self._mirror(run_id, sent[start:start + 500])
        return written

    def write_final(self, run_id: str, step: str, task_id: str, attempt: int) -> bool:
        written = super().write_final(run_id, step, task_id, attempt)
        if written:
            self._mirror(run_id, [{"step": step, "task_id": task_id, "attempt": attempt, "final": True}])
        return written

    def write_final_many(self, run_id: str, tasks: list[tuple[str, str, int]]) -> list[bool]:
        written = super().write_final_many(run_id, tasks)
        sent = [{"step": s, "task_id": t, "attempt": a, "final": True}
                for (s, t, a), w in zip(tasks, written, strict=True) if w]
        for start in range(0, len(sent), 500):
            self._mirror(run_id, sent[start:start + 500])
        return written


def task_metadata(blobs: BlobStore) -> BlobMetadata:
    """The provider a task (or a Step Functions state) records its run through: the service's when
    the run exported one (``MFC_METADATA=service``), else the datastore's."""
    if os.environ.get("MFC_METADATA") == "service":
        return ServiceMetadata(blobs)
    return BlobMetadata(blobs)


def task_records(blobs: BlobStore, flow: str) -> TaskRecords:
    """The task records a task writes through: registered in the metadata service when the run
    exported one (``MFC_METADATA=service``), else the datastore's alone."""
    if os.environ.get("MFC_METADATA") == "service":
        return ServiceTaskRecords(blobs, flow, client_from_env())
    return TaskRecords(blobs, flow)
