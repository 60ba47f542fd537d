"""A flow run by a schedule: it records the parameter its schedule's input gave."""

from mfc import FlowSpec, Parameter, step


class TickingFlow(FlowSpec):
    note = Parameter("note", default="scheduled")

    @step
    def start(self):
        self.seen = self.note
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TickingFlow()
