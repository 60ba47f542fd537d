import os
import time

from metaflow import FlowSpec, catch, current, environment, resources, retry, step, timeout


class ResilientFlow(FlowSpec):
    """Steps that fail and recover: @retry, @timeout with @catch, @catch, and configured steps."""

    @step
    def start(self):
        self.next(self.flaky, self.slow, self.configured, self.broken)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        print("attempt", current.retry_count)
        if current.retry_count < 2:
            raise RuntimeError("transient failure")
        self.attempts_needed = current.retry_count + 1
        self.next(self.join)

    @catch(var="timeout_error")
    @timeout(seconds=2)
    @step
    def slow(self):
        time.sleep(60)
        self.next(self.join)

    @environment(vars={"MODEL_MODE": "fast"})
    @resources(cpu=1, memory=512)
    @step
    def configured(self):
        self.mode = os.environ.get("MODEL_MODE")
        self.next(self.join)

    @catch(var="compute_failed", print_exception=False)
    @step
    def broken(self):
        self.ratio = 1 / 0
        self.next(self.join)

    @step
    def join(self, inputs):
        self.attempts_needed = inputs.flaky.attempts_needed
        self.timed_out = inputs.slow.timeout_error is not None
        self.mode = inputs.configured.mode
        self.mode_in_join = os.environ.get("MODEL_MODE")
        self.error_message = inputs.broken.compute_failed.exception
        self.next(self.end)

    @step
    def end(self):
        print("recovered:", self.attempts_needed, self.timed_out, self.error_message)


if __name__ == "__main__":
    ResilientFlow()
