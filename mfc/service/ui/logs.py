"""Task logs for the task page: read from the datastore the attempt's row names, with the API's
own checks (:mod:`mfc.service.api_tasks`): only from the roots this service was allowed to read
(``app.state.datastore_roots``) and only under the run's flow, so a writer's row never makes the
service open a path of its choosing."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request
from sqlalchemy.engine import Row

from mfc.exceptions import MfcError
from mfc.service.api_tasks import attempt_store, key_inside

TAIL_BYTES = 256 * 1024  # of a log read for its last lines


def log_reader(request: Request, flow: str) -> Callable[[Row, str], str]:
    """``read(attempt_row, stream)``: the end of that attempt's stdout or stderr as text, or a
    line saying why it cannot be shown."""
    def read(attempt: Row, stream: str) -> str:
        logs = attempt.logs if isinstance(attempt.logs, dict) else {}
        if not logs.get(stream):
            return ""
        try:
            data = attempt_store(request, logs, "logs").read_log(key_inside(logs[stream], flow, stream))
        except HTTPException as exc:
            return f"({exc.detail})"
        except (MfcError, OSError) as exc:
            return f"(the log could not be read: {exc})"
        return data[-TAIL_BYTES:].decode("utf-8", "replace")
    return read
