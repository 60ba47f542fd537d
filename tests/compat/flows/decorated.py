"""Step decorators: @environment, @resources, @batch, @retry, @timeout, @catch, and `current`."""

import os
import time

from mfc import FlowSpec, batch, catch, current, environment, resources, retry, step, timeout


def where_am_i():
    return {
        "flow_name": current.flow_name, "run_id": current.run_id, "step_name": current.step_name,
        "task_id": current.task_id, "retry_count": current.retry_count, "pathspec": current.pathspec,
        "username": current.username, "namespace": current.namespace,
        "is_running_flow": current.is_running_flow, "origin_run_id": current.origin_run_id,
        "tags": sorted(current.tags),
    }


class DecoratedFlow(FlowSpec):
    @step
    def start(self):
        self.start_current = where_am_i()
        self.start_pid = os.getpid()
        self.next(self.env_step, self.sized, self.on_batch, self.flaky, self.slow, self.fails, self.fine)

    @environment(vars={"COMPAT_GREETING": "hello from @environment", "COMPAT_NUMBER": "7"})
    @step
    def env_step(self):
        self.greeting = os.environ.get("COMPAT_GREETING")
        self.number = os.environ.get("COMPAT_NUMBER")
        self.next(self.join)

    @resources(cpu=2, memory=1024, gpu=0)
    @step
    def sized(self):
        self.greeting_elsewhere = os.environ.get("COMPAT_GREETING")
        self.next(self.join)

    @batch(cpu=1, memory=2048, queue="compat-queue")
    @step
    def on_batch(self):
        self.batch_ran_here = os.environ.get("COMPAT_MARKER")
        self.next(self.join)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        print(f"attempt {current.retry_count}")
        if current.retry_count < 2:
            raise RuntimeError(f"flaky failure on attempt {current.retry_count}")
        self.succeeded_on_attempt = current.retry_count
        self.flaky_current = where_am_i()
        self.next(self.join)

    @catch(var="timeout_error")
    @timeout(seconds=1)
    @step
    def slow(self):
        time.sleep(60)
        self.next(self.join)

    @catch(var="compute_failed")
    @step
    def fails(self):
        self.partial = "set before the failure"
        raise ValueError("bad input 42")
        self.next(self.join)

    @catch(var="compute_failed")
    @step
    def fine(self):
        self.fine_value = 1
        self.next(self.join)

    @step
    def join(self, inputs):
        self.greeting = inputs.env_step.greeting
        self.attempt = inputs.flaky.succeeded_on_attempt
        self.timed_out = inputs.slow.timeout_error is not None
        failure = inputs.fails.compute_failed
        self.caught = {"type": failure.type, "exception": failure.exception,
                       "stack_mentions_error": "bad input 42" in failure.stacktrace}
        self.next(self.end)

    @step
    def end(self):
        self.end_current = where_am_i()


if __name__ == "__main__":
    DecoratedFlow()
