"""A flow whose middle step waits for a file, so tests can read a run that is still going."""

import os
import time

from mfc import FlowSpec, Parameter, step


class WaitingFlow(FlowSpec):
    """start, then wait until the file named by --signal exists, then end."""

    signal = Parameter("signal", default="")

    @step
    def start(self):
        self.ready = True
        self.next(self.wait)

    @step
    def wait(self):
        print("waiting for the signal file", flush=True)
        deadline = time.time() + 60
        while not os.path.exists(self.signal):
            if time.time() > deadline:
                raise TimeoutError(f"{self.signal} never appeared")
            time.sleep(0.05)
        self.waited = True
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    WaitingFlow()
