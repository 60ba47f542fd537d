"""The flow another one waits for (see downstream.py)."""

from mfc import FlowSpec, step


class UpstreamFlow(FlowSpec):
    @step
    def start(self):
        self.made = "by upstream"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UpstreamFlow()
