"""A step that outlives its ``@timeout``: the orchestrator terminates its Batch job."""

import time

from mfc import FlowSpec, step, timeout


class BatchSleepyFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.nap)

    @timeout(seconds=4)
    @step
    def nap(self):
        print("napping", flush=True)
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BatchSleepyFlow()
