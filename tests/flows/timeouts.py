"""@timeout alone, and @timeout with @retry and @catch (chosen by --mode)."""

import time

from mfc import FlowSpec, Parameter, catch, retry, step, timeout


class TimeoutFlow(FlowSpec):
    mode = Parameter("mode", default="plain")

    @step
    def start(self):
        self.next(self.pick)

    @step
    def pick(self):
        self.next(self.slow, self.guarded)

    @timeout(seconds=1)
    @step
    def slow(self):
        if self.mode == "plain":
            time.sleep(30)
        self.next(self.join)

    @catch(var="err")
    @retry(times=1, minutes_between_retries=0)
    @timeout(seconds=1)
    @step
    def guarded(self):
        if self.mode == "combo":
            time.sleep(30)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.err_text = str(getattr(inputs.guarded, "err", None))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
