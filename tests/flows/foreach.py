"""A foreach whose tasks finish in reverse order; the join must still see them by index."""

import time

from mfc import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.letters = ["p", "q", "r", "s"]
        self.next(self.body, foreach="letters")

    @step
    def body(self):
        time.sleep(0.1 * (3 - self.index))
        self.item = self.input
        self.position = self.index
        self.upper = self.input.upper()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pairs = [(inp.position, inp.item) for inp in inputs]
        self.inputs_seen = [(inp.index, inp.input) for inp in inputs]
        self.uppers = "".join(inp.upper for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        self.done = len(self.pairs)


if __name__ == "__main__":
    ForeachFlow()
