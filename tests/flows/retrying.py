"""A step that fails on attempts 0 and 1 and succeeds on attempt 2."""

from mfc import FlowSpec, current, retry, step


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        print(f"attempt {current.retry_count}")
        if current.retry_count < 2:
            raise RuntimeError(f"flaky failure on attempt {current.retry_count}")
        self.succeeded_on = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        self.final = self.succeeded_on


if __name__ == "__main__":
    RetryFlow()
