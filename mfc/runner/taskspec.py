"""TaskSpec: everything a task needs, as JSON-able data. Every executor hands the same spec to
the same task entrypoint (``python -m mfc.runner.task``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mfc.pathspec import check_attempt, check_part


@dataclass
class InputRef:
    """A finished parent task: ``run/step/task``. Its record is that of the attempt its final
    pointer names (``final.json``); specs of older versions name the attempt themselves."""

    step: str
    task_id: str
    attempt: int | None = None


@dataclass
class TaskSpec:
    flow_file: str
    flow_name: str
    step: str
    run_id: str
    task_id: str
    datastore_root: str
    inputs: list[InputRef]
    attempt: int = 0
    split_index: int | None = None
    is_last_attempt: bool = True
    catch_fallback: str | None = None  # error text when a killed task's @catch fallback runs
    fallback_ending: str | None = None  # how the killed attempt ended (an Ending value): which exception @catch sees
    username: str = ""
    tags: list[str] = field(default_factory=list)
    origin_run_id: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    code_package: dict[str, str] | None = None  # {"sha256": ..., "url": ...}
    image: str | None = None
    submitted_at: float | None = None  # when the orchestrator submitted it (epoch seconds): queue time

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step}/{self.task_id}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        """A spec from its JSON form; its pathspec parts are checked like any input (a spec may
        come from a command line or a datastore object), so no task writes outside its run."""
        data = dict(data)
        data["inputs"] = [InputRef(**i) for i in data["inputs"]]
        spec = cls(**data)
        check_part(spec.flow_name, "flow")
        check_part(spec.run_id, "run id")
        check_attempt(spec.attempt)
        for step, task_id, attempt in [(spec.step, spec.task_id, spec.attempt),
                                       *((i.step, i.task_id, i.attempt) for i in spec.inputs)]:
            check_part(step, "step")
            check_part(task_id, "task id")
            if attempt is not None:
                check_attempt(attempt)
        return spec

    @classmethod
    def from_json(cls, text: str) -> TaskSpec:
        return cls.from_dict(json.loads(text))


ARGUMENT_LIMIT = 64 * 1024  # a command-line argument is capped at 128 KiB on Linux; stay well below


def spec_argument(spec: TaskSpec, limit: int = ARGUMENT_LIMIT) -> str:
    """The ``--spec`` value for ``python -m mfc.runner.task``: the JSON itself, or ``@<location>``
    of a copy in the datastore (``<attempt>.spec.json``) when it is too large for a command line
    (a join over thousands of foreach tasks)."""
    text = spec.to_json()
    if len(text.encode()) <= limit:
        return text
    from mfc.stores.blob import open_blob_store
    from mfc.stores.specs import store_spec

    blobs = open_blob_store(spec.datastore_root)
    return store_spec(blobs, spec.flow_name, spec.run_id, spec.step, spec.task_id, spec.attempt, text)
