"""@catch alone, @catch with @retry and @catch around a segfault, on three branches; downstream
steps read the caught errors."""

from mfc import FlowSpec, catch, current, retry, step


class CatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.caught, self.caught_retry, self.crashed)

    @catch(var="err")
    @step
    def caught(self):
        self.partial = "set before the raise"
        raise ValueError("caught me")
        self.next(self.join)

    @catch(var="err2")
    @retry(times=1, minutes_between_retries=0)
    @step
    def caught_retry(self):
        raise KeyError(f"attempt {current.retry_count}")
        self.next(self.join)

    @catch(var="err3")
    @step
    def crashed(self):
        import ctypes

        ctypes.string_at(0)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.err_text = str(inputs.caught.err)
        self.err2_text = str(inputs.caught_retry.err2)
        self.err3_text = str(inputs.crashed.err3)
        self.next(self.end)

    @step
    def end(self):
        self.downstream_ran = True


if __name__ == "__main__":
    CatchFlow()
