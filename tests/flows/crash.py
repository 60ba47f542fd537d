"""A foreach where item 1 dies in the chosen way once its siblings have finished (they leave a
marker file in --syncdir)."""

import os
import signal
import sys
import time

from mfc import FlowSpec, Parameter, step


def die(mode):
    if mode == "segv":
        import ctypes

        ctypes.string_at(0)
    elif mode == "os_exit":
        os._exit(0)
    elif mode == "sys_exit":
        sys.exit(3)
    elif mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "memory":
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (1024 * 1024 * 1024, resource.RLIM_INFINITY))
        hog = bytearray(2 * 1024 * 1024 * 1024)
        print(len(hog))


class CrashFlow(FlowSpec):
    mode = Parameter("mode", default="segv")
    syncdir = Parameter("syncdir", required=True)

    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        if self.input == 1:
            deadline = time.monotonic() + 20
            while len(os.listdir(self.syncdir)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)  # the siblings write their records after their marker
            die(self.mode)
        self.value = self.input * 100
        open(os.path.join(self.syncdir, str(self.input)), "w").close()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [inp.value for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CrashFlow()
