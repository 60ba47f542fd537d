"""What every client object shares: pathspec parsing (:mod:`mfc.pathspec`), timestamps, the
datastore it reads."""

from __future__ import annotations

from datetime import datetime
from typing import overload

from mfc.client.datastore import Datastore, open_datastore
from mfc.pathspec import split_pathspec

__all__ = ["ClientObject", "split_pathspec", "to_datetime"]


@overload
def to_datetime(timestamp: float) -> datetime: ...
@overload
def to_datetime(timestamp: float | None) -> datetime | None: ...


def to_datetime(timestamp: float | None) -> datetime | None:
    """A naive local datetime from seconds since the epoch (like Metaflow's client)."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp)


class ClientObject:
    """Base of Flow, Run, Step and Task: identity, equality and a Metaflow-style repr."""

    _kind = "Object"

    def __init__(self, pathspec: str, datastore: Datastore | None) -> None:
        self._ds = datastore if datastore is not None else open_datastore()
        self._pathspec = pathspec

    @property
    def pathspec(self) -> str:
        """``Flow/run_id/step/task_id`` (as many parts as this object has)."""
        return self._pathspec

    @property
    def path_components(self) -> list[str]:
        return self._pathspec.split("/")

    @property
    def id(self) -> str:
        """The last part of the pathspec: flow name, run id, step name or task id."""
        return self._pathspec.rsplit("/", 1)[-1]

    @property
    def datastore_root(self) -> str:
        """The datastore root this object was read from."""
        return self._ds.root

    def __repr__(self) -> str:
        return f"{self._kind}({self._pathspec!r})"

    def __str__(self) -> str:
        return self.__repr__()

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other._pathspec == self._pathspec
                and other._ds.root == self._ds.root)

    def __hash__(self) -> int:
        return hash((self._kind, self._pathspec, self._ds.root))
