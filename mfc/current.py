"""`current`: what the running task knows about itself (flow, run, step, task, retry count)."""

from __future__ import annotations

from typing import Any


class Current:
    """Read-only view of the running task, like Metaflow's ``current``.

    Outside a running task every property is ``None`` and ``is_running_flow`` is False.
    """

    def __init__(self) -> None:
        self._info: dict[str, Any] = {}
        self._card: Any = None

    def _bind(self, **info: Any) -> None:
        self._info = dict(info)
        self._card = None

    def _set_card(self, collector: Any) -> None:
        """Bind ``current.card`` to the running step's card collector (``mfc.cards``)."""
        self._card = collector

    @property
    def card(self) -> Any:
        """The step's cards (``current.card.append(...)``, ``current.card["id"]``): see
        :mod:`mfc.cards`. In a step without ``@card`` it accepts everything, does nothing, and
        warns once on stderr, as Metaflow does."""
        if self._card is None:
            self._card = _NoCards(self.step_name)
        return self._card

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


class _NoCards:
    """``current.card`` of a step without ``@card``: every call is accepted and ignored, with one
    warning per task. It lives here so a step without cards never imports :mod:`mfc.cards`."""

    def __init__(self, step: str | None) -> None:
        self._step = step
        self._warned = False

    def _warn(self) -> None:
        if not self._warned:
            import sys

            where = f"step {self._step}" if self._step else "this code (not a running step)"
            print(f"[@card WARNING] {where} has no @card: current.card calls are ignored; add @card above @step "
                  "to make a card", file=sys.stderr, flush=True)
            self._warned = True

    def append(self, component: Any, id: str | None = None) -> None:  # noqa: A002 - Metaflow's name
        self._warn()

    def extend(self, components: Any) -> None:
        self._warn()

    def clear(self) -> None:
        self._warn()

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        self._warn()

    def get(self, type: str | None = None) -> list:  # noqa: A002 - Metaflow's name
        self._warn()
        return []

    @property
    def components(self) -> dict:
        self._warn()
        return {}

    def __getitem__(self, key: str) -> _NoCards:
        self._warn()
        return self

    def __setitem__(self, key: str, value: Any) -> None:
        self._warn()

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


current = Current()
