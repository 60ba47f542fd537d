"""The task-side state behind a flow instance: its inherited artifact index, lazy loading,
foreach frames, the recorded transition and ``merge_artifacts``; and the ``inputs`` of a join."""

from __future__ import annotations

from typing import Any

from mfc.exceptions import CorruptArtifact, MfcError
from mfc.stores.artifacts import ArtifactStore

_MISSING = object()
PREFETCH_BYTES = 128 * 1024 * 1024  # stored bytes a join reads ahead in one batch


class _LazyArtifacts:
    """Artifacts of one task, loaded from the store on first access. ``source`` is the pathspec
    of the input task whose record lists them, named when one turns out to be damaged."""

    def __init__(self, store: ArtifactStore, index: dict[str, list], foreach_stack: list[dict],
                 source: str | None = None, batch: JoinBatch | None = None) -> None:
        self.store = store
        self.refs = index
        self.frames = foreach_stack
        self.source = source
        self._cache: dict[str, Any] = {}
        self._batch = batch
        if batch is not None:
            batch.members.append(self)

    def load_artifact(self, name: str) -> tuple[bool, Any]:
        ref = self.refs.get(name)
        if ref is None:
            return False, None
        return True, self._load_sha(ref[0], name)

    def ref_of(self, name: str) -> tuple[str, int] | None:
        """The sha and stored size of an artifact (``input``: the foreach item), None if it has none."""
        if name == "input":
            return (self.frames[-1]["input"], 0) if self.frames else None
        ref = self.refs.get(name)
        return (ref[0], int(ref[1] or 0)) if ref is not None else None

    def _load_sha(self, sha: str, name: str) -> Any:
        value = self._cache.get(sha, _MISSING)
        if value is _MISSING and self._batch is not None:
            self._batch.fetch(self, name)
            value = self._cache.get(sha, _MISSING)
        if value is _MISSING:
            try:
                value = self._cache[sha] = self.store.load(sha)
            except CorruptArtifact as exc:
                raise exc.within(self.source, what=f"input artifact {name!r}") from None
        return value

    def foreach_input(self) -> Any:
        if not self.frames:
            return None
        return self._load_sha(self.frames[-1]["input"], "input")

    def foreach_index(self) -> int | None:
        return self.frames[-1]["index"] if self.frames else None

    def foreach_frames(self) -> list[tuple[int, int, Any]]:
        return [(f["index"], f["num_splits"], self._load_sha(f["input"], "input")) for f in self.frames]


class JoinBatch:
    """Reads an artifact of a join's inputs together: when one input's ``x`` is first asked for,
    ``x`` of the inputs after it that do not hold it yet comes in the same batched read (up to
    ``limit`` stored bytes), since a join goes over its inputs (``sum(i.x for i in inputs)``).
    Every input still unpickles its own copy, and one whose object is missing or damaged is
    reported when it is asked for, as without the batch."""

    def __init__(self, store: ArtifactStore, limit: int = PREFETCH_BYTES) -> None:
        self.store = store
        self.limit = limit
        self.members: list[_LazyArtifacts] = []

    def fetch(self, asking: _LazyArtifacts, name: str) -> None:
        start = self.members.index(asking) if asking in self.members else 0
        chosen: list[tuple[_LazyArtifacts, str]] = []
        total = 0
        for member in self.members[start:]:
            found = member.ref_of(name)
            if found is None or found[0] in member._cache:
                continue
            if chosen and total + found[1] > self.limit:
                break
            chosen.append((member, found[0]))
            total += found[1]
        if len(chosen) < 2:
            return  # nothing to batch: the asking input loads its own
        try:
            payloads = self.store.load_payloads(list(dict.fromkeys(sha for _, sha in chosen)))
        except MfcError:
            return  # each input then loads (and reports) its own
        for member, sha in chosen:
            if sha in payloads:
                try:
                    member._cache[sha] = self.store.unpickle(sha, payloads[sha])
                except MfcError:
                    pass  # reported when that input's artifact is asked for


class TaskContext(_LazyArtifacts):
    """State of the running task, attached to the flow instance as ``_ctx``."""

    def __init__(self, store: ArtifactStore, step_name: str, index: dict[str, list],
                 foreach_stack: list[dict], parameter_names: set[str], is_join: bool,
                 source: str | None = None) -> None:
        super().__init__(store, index, foreach_stack, source)
        self.step_name = step_name
        self.parameter_names = parameter_names
        self.is_join = is_join
        self.transition: tuple[list[str], str | None] | None = None
        self.loaded: dict[str, tuple[str, Any]] = {}

    def load_artifact(self, name: str) -> tuple[bool, Any]:
        found, value = super().load_artifact(name)
        if found:
            self.loaded[name] = (self.refs[name][0], value)
        return found, value

    def forget_artifact(self, name: str) -> None:
        self.refs.pop(name, None)

    def record_transition(self, steps: list[str], foreach: str | None) -> None:
        if self.transition is not None:
            raise MfcError(f"step {self.step_name} called self.next() twice")
        self.transition = (steps, foreach)

    def merge_inputs(self, inputs: list[InputView], exclude: set[str], include: set[str] | None,
                     already: set[str]) -> None:
        candidates: dict[str, dict[str, list[str]]] = {}
        for view in inputs:
            for name, ref in view._artifacts.refs.items():
                if name.startswith("_") or name in self.parameter_names:
                    continue
                candidates.setdefault(name, {}).setdefault(ref[0], []).append(view._label)
        if include is not None:
            missing = sorted(include - set(candidates))
            if missing:
                raise MfcError(f"step {self.step_name}: merge_artifacts(include=...) names artifacts no input has: {', '.join(missing)}")
        conflicts = []
        for name, by_sha in candidates.items():
            if name in already or name in exclude or (include is not None and name not in include):
                continue
            if len(by_sha) > 1:
                conflicts.append(name)
                continue
            sha = next(iter(by_sha))
            ref = next(v._artifacts.refs[name] for v in inputs if name in v._artifacts.refs)
            self.refs[name] = ref
            assert ref[0] == sha
        if conflicts:
            names = ", ".join(sorted(conflicts))
            raise MfcError(
                f"step {self.step_name}: merge_artifacts() found different values for: {names}. "
                "Set them explicitly (self.<name> = ...) before calling merge_artifacts(), or pass exclude=[...]"
            )


class InputView:
    """One parent of a join: read its artifacts as attributes (``inp.x``). Only ``input``,
    ``index`` and ``foreach_stack()`` are its own; every other name is an artifact."""

    def __init__(self, store: ArtifactStore, step_name: str, task_id: str, index: dict[str, list],
                 foreach_stack: list[dict], source: str | None = None, batch: JoinBatch | None = None) -> None:
        self.__dict__["_artifacts"] = _LazyArtifacts(store, index, foreach_stack, source, batch)
        self.__dict__["_step"] = step_name
        self.__dict__["_label"] = f"{step_name}/{task_id}"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        found, value = self._artifacts.load_artifact(name)
        if not found:
            raise AttributeError(f"input {self._label} has no artifact {name!r}")
        return value

    @property
    def input(self) -> Any:
        return self._artifacts.foreach_input()

    @property
    def index(self) -> int | None:
        return self._artifacts.foreach_index()

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        return self._artifacts.foreach_frames()

    def __repr__(self) -> str:
        return f"<input {self._label}>"


class Inputs(list):
    """The ``inputs`` of a join: a list of parents in a fixed order (foreach: by split index;
    branches: by the order of the split's ``self.next(...)`` arguments). ``inputs.a`` is the
    parent from step ``a``."""

    def __getattr__(self, name: str) -> InputView:
        for view in self:
            if view._step == name:
                return view
        raise AttributeError(f"join has no input from step {name!r} (inputs: {', '.join(v._step for v in self)})")
