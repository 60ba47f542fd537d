"""A step that sleeps for --seconds; with --limited, a 2 s @timeout step sleeps instead."""

import time

from mfc import FlowSpec, Parameter, step, timeout


class SlowFlow(FlowSpec):
    seconds = Parameter("seconds", default=60.0)
    limited = Parameter("limited", default=False)

    @step
    def start(self):
        self.next(self.nap)

    @step
    def nap(self):
        print("napping", flush=True)
        if not self.limited:
            time.sleep(self.seconds)
        self.next(self.capped)

    @timeout(seconds=2)
    @step
    def capped(self):
        if self.limited:
            time.sleep(self.seconds)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlowFlow()
