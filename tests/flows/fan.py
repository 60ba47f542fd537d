"""A foreach over --n items; each task sleeps --sleep seconds; item --fail raises (once the
others have written their pid to --piddir, if given), the others write their pid and sleep."""

import os
import time

from mfc import FlowSpec, Parameter, step


def _pids(directory):
    return [name for name in os.listdir(directory) if name.endswith(".pid")]


class FanFlow(FlowSpec):
    n = Parameter("n", default=5)
    sleep = Parameter("sleep", default=0.0)
    fail = Parameter("fail", default=-1)
    piddir = Parameter("piddir", default="")
    label = Parameter("label", default="x")

    @step
    def start(self):
        self.items = [f"{self.label}-{i}" for i in range(self.n)]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        if self.index == self.fail:
            deadline = time.monotonic() + 20
            while self.piddir and len(_pids(self.piddir)) < self.n - 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
            raise RuntimeError(f"item {self.index} failed")  # FAN-FAIL
        if self.piddir:
            path = os.path.join(self.piddir, f"{os.getpid()}.pid")
            with open(path + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(path + ".tmp", path)
        time.sleep(self.sleep)
        self.out = self.input.upper()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.outs = [inp.out for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FanFlow()
