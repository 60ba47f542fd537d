"""A step whose container exits with code 3 (no record), then raises, then succeeds."""

import os

from mfc import FlowSpec, current, retry, step


class RetryExitFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        print(f"attempt {current.retry_count}", flush=True)
        if current.retry_count == 0:
            os._exit(3)
        if current.retry_count == 1:
            raise RuntimeError("second attempt fails too")
        self.succeeded_on = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryExitFlow()
