"""A step that starts a background process and returns without waiting for it."""

import subprocess

from mfc import FlowSpec, Parameter, step


class LeakyFlow(FlowSpec):
    pidfile = Parameter("pidfile", required=True)

    @step
    def start(self):
        child = subprocess.Popen(["sleep", "30"])
        with open(self.pidfile, "w") as fh:
            fh.write(str(child.pid))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LeakyFlow()
