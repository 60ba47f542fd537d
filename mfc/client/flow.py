"""``Metaflow()`` (every flow in the datastore) and ``Flow(name)`` (its runs, newest first)."""

from __future__ import annotations

from collections.abc import Iterator

from mfc.client.base import ClientObject, split_pathspec
from mfc.client.datastore import Datastore, open_datastore
from mfc.client.errors import MfcNotFound, lookup
from mfc.client.namespace import get_namespace, in_namespace
from mfc.client.run import Run, run_tags
from mfc.pathspec import is_valid
from mfc.stores.provider import read_runs


class Metaflow:
    """Entry point listing every flow of the datastore: ``Metaflow().flows``."""

    def __init__(self, *, _datastore: Datastore | None = None) -> None:
        self._ds = _datastore if _datastore is not None else open_datastore()

    @property
    def flows(self) -> list[Flow]:
        """Every flow with at least one run, by name."""
        return list(self)

    def __iter__(self) -> Iterator[Flow]:
        for name in self._ds.metadata.flows():
            if self._ds.metadata.run_ids(name):
                yield Flow(name, _datastore=self._ds)

    def __getitem__(self, name: str) -> Flow:
        with lookup():
            return Flow(name, _datastore=self._ds)

    def __repr__(self) -> str:
        return "Metaflow()"


class Flow(ClientObject):
    """A flow and its runs: ``Flow('HelloFlow').latest_run``."""

    _kind = "Flow"

    def __init__(self, pathspec: str, *, _datastore: Datastore | None = None) -> None:
        (name,) = split_pathspec(pathspec, "Flow")
        super().__init__(name, _datastore)
        if not self._ds.metadata.run_ids(name):
            flows = [f for f in self._ds.metadata.flows() if self._ds.metadata.run_ids(f)]
            raise MfcNotFound(f"no flow {name!r} in {self._ds.root} (flows: {', '.join(flows) or 'none'})")

    @property
    def parent(self) -> None:
        return None

    def runs(self, *tags: str) -> Iterator[Run]:
        """Runs in the current namespace that carry every one of ``tags``, newest first (lazy:
        read a page at a time, each page's records in one batch)."""
        wanted = set(tags)
        ns = get_namespace()
        for run_id, record in read_runs(self._ds.metadata, self.id):
            carried = run_tags(record)
            if in_namespace(carried, ns) and wanted <= carried:
                yield Run(f"{self.id}/{run_id}", _datastore=self._ds, _record=record, _namespace_check=False)

    def __iter__(self) -> Iterator[Run]:
        return self.runs()

    def __getitem__(self, run_id: str) -> Run:
        """The run with this id (raises MfcNotFound, or MfcNamespaceMismatch outside the namespace)."""
        with lookup():
            return Run(f"{self.id}/{run_id}", _datastore=self._ds)

    def __contains__(self, run_id: object) -> bool:
        return is_valid(run_id, "run id") and self._ds.metadata.run(self.id, run_id) is not None

    @property
    def latest_run(self) -> Run | None:
        """The newest run in the current namespace, finished or not."""
        return next(self.runs(), None)

    @property
    def latest_successful_run(self) -> Run | None:
        """The newest run in the current namespace that succeeded."""
        return next((run for run in self.runs() if run.successful), None)

    def _repr_html_(self) -> str:
        from mfc.client.render import flow_html

        return flow_html(self)
