"""A Batch job's output from CloudWatch Logs (group ``/aws/batch/job``, stream from
``describe_jobs``' ``container.logStreamName``).

Batch merges a container's stdout and stderr into one stream, so a Batch task's whole output is
appended to its stdout log; its stderr log stays empty. :class:`LogFollower` reads a stream
incrementally (``get_log_events`` from the head, following ``nextForwardToken`` until it stops
changing), so it can be called while the job runs (AWS writes as it goes; moto only once the
container has exited) and once more after it ended. Throttling is waited out with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

LOG_GROUP = "/aws/batch/job"
THROTTLE_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
                            "LimitExceededException"})
MISSING_CODES = frozenset({"ResourceNotFoundException"})
MAX_PAGES = 10_000  # a safety stop: 10k pages of up to 10k events each


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code", ""))
    return ""


def call_with_backoff(fn: Callable[[], Any], *, max_wait: float = 60.0, first: float = 0.5, cap: float = 8.0,
                      sleep: Callable[[float], None] = time.sleep) -> Any:
    """``fn()``, retried with exponential backoff (``first`` doubling to ``cap`` seconds) while AWS
    answers with a throttling error, for up to ``max_wait`` seconds of waiting; then the error."""
    delay, waited = first, 0.0
    while True:
        try:
            return fn()
        except Exception as exc:
            if error_code(exc) not in THROTTLE_CODES or waited >= max_wait:
                raise
        sleep(delay)
        waited += delay
        delay = min(cap, delay * 2)


class LogFollower:
    """Reads one log stream from where it left off and appends each event's message, one line
    each, to a file. Not thread-safe: one caller at a time."""

    def __init__(self, client: Any, stream: str, path: str, group: str = LOG_GROUP, page_limit: int | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = 60.0) -> None:
        self.client = client
        self.stream = stream
        self.path = path
        self.group = group
        self.page_limit = page_limit
        self.token: str | None = None
        self.events = 0
        self._sleep = sleep
        self._max_wait = max_wait

    def _page(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": self.stream, "startFromHead": True}
        if self.token is not None:
            kwargs["nextToken"] = self.token
        if self.page_limit:
            kwargs["limit"] = self.page_limit
        return call_with_backoff(lambda: self.client.get_log_events(**kwargs), max_wait=self._max_wait,
                                 sleep=self._sleep)

    def poll(self) -> int:
        """Append the events written since the last call; returns how many. A stream that does not
        exist yet counts as empty."""
        added = 0
        for _ in range(MAX_PAGES):
            try:
                page = self._page()
            except Exception as exc:
                if error_code(exc) in MISSING_CODES:
                    return added
                raise
            events = page.get("events") or []
            if events:
                with open(self.path, "ab") as fh:
                    fh.write(b"".join(_line(e.get("message", "")) for e in events))
                added += len(events)
            token = page.get("nextForwardToken")
            if token is None or token == self.token:
                self.token = token or self.token
                break
            self.token = token
        self.events += added
        return added


def _line(message: str) -> bytes:
    return (message if message.endswith("\n") else message + "\n").encode("utf-8", errors="replace")
