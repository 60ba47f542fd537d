"""Three steps in a line."""

from mfc import FlowSpec, step


class SfnLinearFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.middle)

    @step
    def middle(self):
        self.x += 1
        self.next(self.end)

    @step
    def end(self):
        self.result = self.x * 10


if __name__ == "__main__":
    SfnLinearFlow()
