"""A flow started by the event ``data_ready``; its parameter ``alpha`` comes from the payload."""

from mfc import FlowSpec, Parameter, step, trigger


@trigger(event={"name": "data_ready", "parameters": {"alpha": "alpha"}})
class OnEventFlow(FlowSpec):
    alpha = Parameter("alpha", default="unset")
    size = Parameter("size", default=3)

    @step
    def start(self):
        self.seen = (self.alpha, self.size)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OnEventFlow()
