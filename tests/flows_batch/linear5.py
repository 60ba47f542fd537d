"""Five steps in a row, each adding one: the timing flow."""

from mfc import FlowSpec, step


class BatchLinearFlow(FlowSpec):
    @step
    def start(self):
        self.n = 1
        self.next(self.two)

    @step
    def two(self):
        self.n += 1
        self.next(self.three)

    @step
    def three(self):
        self.n += 1
        self.next(self.four)

    @step
    def four(self):
        self.n += 1
        self.next(self.end)

    @step
    def end(self):
        self.n += 1


if __name__ == "__main__":
    BatchLinearFlow()
