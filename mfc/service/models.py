"""The bodies the API takes (pydantic models: checked before any handler runs, described in the
OpenAPI document at ``/openapi.json`` and ``/docs``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mfc.pathspec import check_part

MAX_BATCH = 1000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewRun(Body):
    run_id: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        return None if value is None else check_part(value, "run id")


class Final(BaseModel):
    """A final status record: ``status`` and any other fields (``finished_at`` defaults to now)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["succeeded", "failed", "interrupted"]
    finished_at: float | None = None
    if_absent: bool = False


class Lease(BaseModel):
    """A heartbeat record (:mod:`mfc.stores.lease`): any fields, kept as given."""

    model_config = ConfigDict(extra="allow")


class TagChange(Body):
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    expect: list[str] | None = None


class Logs(Body):
    root: str
    stdout: str | None = None
    stderr: str | None = None


class AttemptEntry(Body):
    step: str
    task_id: str
    attempt: int = Field(ge=0, le=1_000_000)
    started_at: float | None = None
    finished_at: float | None = None
    record: dict[str, Any] | None = None
    final: bool = False
    foreach_index: int | None = Field(default=None, ge=0, le=2**31 - 1)
    foreach_item: str | None = Field(default=None, max_length=10_000)
    logs: Logs | None = None
    host: str | None = Field(default=None, max_length=255)

    @field_validator("step")
    @classmethod
    def _step(cls, value: str) -> str:
        return check_part(value, "step")

    @field_validator("task_id")
    @classmethod
    def _task_id(cls, value: str) -> str:
        return check_part(value, "task id")


class Attempts(Body):
    attempts: list[AttemptEntry] = Field(max_length=MAX_BATCH)


class Schedule(Body):
    expression: str
    timezone: str | None = None
    kind: str | None = None
    enabled: bool = True


class Deployment(Body):
    flow: str
    state_machine_arn: str = Field(min_length=1, max_length=2048)
    region: str | None = Field(default=None, max_length=64)
    schedule: Schedule | None = None
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)

    @field_validator("flow")
    @classmethod
    def _flow(cls, value: str) -> str:
        return check_part(value, "flow")


class Trigger(Body):
    parameters: dict[str, Any] = Field(default_factory=dict)
