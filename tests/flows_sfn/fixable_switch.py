"""A looping switch, then a step that fails until BROKEN is set to False: a resume on Step
Functions clones the loop's repetitions (each Choice reads the clone's case) and reruns the check."""

from mfc import FlowSpec, step

BROKEN = True


class FixableSwitchFlow(FlowSpec):
    @step
    def start(self):
        self.count = 0
        self.next(self.loop)

    @step
    def loop(self):
        self.count += 1
        self.again = self.count < 3
        self.next({True: self.loop, False: self.check}, condition="again")

    @step
    def check(self):
        if BROKEN:
            raise RuntimeError("the check is broken")
        self.checked = self.count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FixableSwitchFlow()
