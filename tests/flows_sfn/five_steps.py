"""Five steps in a row, each adding to a list (the Step Functions benchmark's flow)."""

from mfc import FlowSpec, step


class FiveStepFlow(FlowSpec):
    @step
    def start(self):
        self.trail = ["start"]
        self.next(self.one)

    @step
    def one(self):
        self.trail = self.trail + ["one"]
        self.next(self.two)

    @step
    def two(self):
        self.trail = self.trail + ["two"]
        self.next(self.three)

    @step
    def three(self):
        self.trail = self.trail + ["three"]
        self.next(self.end)

    @step
    def end(self):
        self.trail = self.trail + ["end"]


if __name__ == "__main__":
    FiveStepFlow()
