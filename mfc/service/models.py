"""The bodies the API takes (pydantic models: checked before any handler runs, described in the
OpenAPI document at ``/openapi.json`` and ``/docs``)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mfc.pathspec import check_part

MAX_BATCH = 1000
LAST_STAMP = 1e11  # epoch seconds in the year 5138: a time past it is a mistake, not a date
Stamp = Annotated[float, Field(ge=0, le=LAST_STAMP)]


def storable(value: Any, where: str = "body") -> None:
    """Refuse what JSON columns cannot keep or give back: NaN and infinities (not JSON), and
    NUL characters (PostgreSQL's text and JSON refuse them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a number JSON can carry")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where}: text must not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            storable(key, where)
            storable(item, f"{where}.{str(key)[:40]}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            storable(item, f"{where}[{index}]")


class Storable(BaseModel):
    """A body whose every value can be stored as JSON and read back."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        storable(data)
        return data


class Body(Storable):
    model_config = ConfigDict(extra="forbid")


def _stamp(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 <= value <= LAST_STAMP):
        raise ValueError(f"{where} must be a time in epoch seconds (0 to {LAST_STAMP:.0e}) or null")


class NewRun(Body):
    run_id: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)

    @field_validator("info")
    @classmethod
    def _driver(cls, info: dict[str, Any]) -> dict[str, Any]:
        driver = info.get("driver")
        if driver is not None:
            if not isinstance(driver, dict):
                raise ValueError("info.driver must be an object")
            for key in ("timeout", "interval"):
                _stamp(driver.get(key), f"info.driver.{key}")
        return info

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        return None if value is None else check_part(value, "run id")


class Final(Storable):
    """A final status record: ``status`` and any other fields (``finished_at`` defaults to now)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["succeeded", "failed", "interrupted"]
    finished_at: Stamp | None = None
    if_absent: bool = False


class Lease(Storable):
    """A heartbeat record (:mod:`mfc.stores.lease`): any fields, kept as given; its times and
    timeout are checked (the status is computed from them)."""

    model_config = ConfigDict(extra="allow")
    refreshed_at: Stamp | None = None
    expires_at: Stamp | None = None
    timeout: Stamp | None = None


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
    started_at: Stamp | None = None
    finished_at: Stamp | None = None
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
