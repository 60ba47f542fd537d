"""A step whose job may wait in Batch's queue longer than its ``@timeout`` and then runs well
within it: the queue time does not count."""

import time

from mfc import FlowSpec, step, timeout


class BatchHeldFlow(FlowSpec):
    @timeout(seconds=8)
    @step
    def start(self):
        time.sleep(1)
        self.ran = True
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BatchHeldFlow()
