"""`current`: what the running task knows about itself (flow, run, step, task, retry count)."""

from __future__ import annotations

from typing import Any


class Current:
    """Read-only view of the running task, like Metaflow's ``current``.

    Outside a running task every property is ``None`` and ``is_running_flow`` is False.
    """

    def __init__(self) -> None:
        self._info: dict[str, Any] = {}

    def _bind(self, **info: Any) -> None:
        self._info = dict(info)

    def _get(self, key: str) -> Any:
        return self._info.get(key)

    @property
    def is_running_flow(self) -> bool:
        return bool(self._info)

    @property
    def flow_name(self) -> str | None:
        return self._get("flow_name")

    @property
    def run_id(self) -> str | None:
        return self._get("run_id")

    @property
    def step_name(self) -> str | None:
        return self._get("step_name")

    @property
    def task_id(self) -> str | None:
        return self._get("task_id")

    @property
    def retry_count(self) -> int:
        return int(self._get("retry_count") or 0)

    @property
    def origin_run_id(self) -> str | None:
        return self._get("origin_run_id")

    @property
    def username(self) -> str | None:
        return self._get("username")

    @property
    def namespace(self) -> str | None:
        user = self._get("username")
        return f"user:{user}" if user else None

    @property
    def tags(self) -> list[str]:
        return list(self._get("tags") or [])

    @property
    def pathspec(self) -> str | None:
        if not self._info:
            return None
        return f"{self.flow_name}/{self.run_id}/{self.step_name}/{self.task_id}"

    @property
    def parallel(self) -> Any:
        return None

    def __contains__(self, key: str) -> bool:
        return key in self._info

    def __repr__(self) -> str:
        return f"<current {self.pathspec or '(not in a task)'}>"

    def __reduce__(self) -> str:
        # Pickled by reference: an object holding `current` sees the running task's, not the
        # one that was running when it was stored.
        return "current"

    @property
    def project_name(self) -> str | None:
        return self._get("project_name")

    @property
    def branch_name(self) -> str | None:
        return self._get("branch_name")

    @property
    def project_flow_name(self) -> str | None:
        name = self._get("project_name")
        return f"{name}.{self._get('branch_name')}.{self.flow_name}" if name else None


current = Current()
