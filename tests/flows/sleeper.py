"""A step that writes its pid to --pidfile and sleeps (for Ctrl-C tests)."""

import os
import time

from mfc import FlowSpec, Parameter, step


class SleeperFlow(FlowSpec):
    pidfile = Parameter("pidfile", required=True)
    seconds = Parameter("seconds", default=60.0)

    @step
    def start(self):
        self.next(self.nap)

    @step
    def nap(self):
        with open(self.pidfile + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(self.pidfile + ".tmp", self.pidfile)
        print("napping", flush=True)
        time.sleep(self.seconds)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SleeperFlow()
