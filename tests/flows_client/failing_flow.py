"""A flow whose second step raises, for the client's failed-run tests."""

from mfc import FlowSpec, step


class FailingFlow(FlowSpec):
    """start sets a value, boom raises."""

    @step
    def start(self):
        self.before = 41
        self.next(self.boom)

    @step
    def boom(self):
        print("about to fail")
        raise ValueError(f"cannot use {self.before}")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingFlow()
