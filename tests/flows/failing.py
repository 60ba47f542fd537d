"""A step that raises."""

from mfc import FlowSpec, step


class FailingFlow(FlowSpec):
    @step
    def start(self):
        self.before = "ok"
        self.next(self.boom)

    @step
    def boom(self):
        print("about to fail")
        raise ValueError("bad value 42")  # RAISE-HERE
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingFlow()
