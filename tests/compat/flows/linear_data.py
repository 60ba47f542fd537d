"""Artifacts flow through linear steps; an artifact a step does not touch is passed on by
reference (never unpickled or stored again)."""

import os

from mfc import FlowSpec, current, step


class Tracked:
    """Writes a line to a log file each time it is unpickled, naming the step that loaded it."""

    def __init__(self, log):
        self.log = log
        self.value = 42

    def __setstate__(self, state):
        self.__dict__.update(state)
        with open(self.log, "a") as fh:
            fh.write(f"{current.step_name}\n")


class LinearDataFlow(FlowSpec):
    @step
    def start(self):
        self.tracked = Tracked(os.environ["COMPAT_LOAD_LOG"])
        self.numbers = [1, 2, 3]
        self.text = "hello"
        self.next(self.middle)

    @step
    def middle(self):
        self.numbers.append(4)
        self.text = self.text + " world"
        self.added = {"by": "middle"}
        print("middle saw", self.numbers)
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.numbers)
        self.tracked_value = self.tracked.value


if __name__ == "__main__":
    LinearDataFlow()
