"""Every parameter type; each step records what it saw."""

from mfc import FlowSpec, JSONType, Parameter, step


class ParamsFlow(FlowSpec):
    """Parameters of every type."""

    text = Parameter("text", default="hello", help="Some text.")
    count = Parameter("count", default=3, help="How many.")
    ratio = Parameter("ratio", default=1.5)
    flag = Parameter("flag", default=False, help="A switch.")
    verbose = Parameter("verbose", default=True)
    config = Parameter("config", type=JSONType, default='{"a": 1}')
    max_size = Parameter("max_size", default=10)

    @step
    def start(self):
        self.seen = self.snapshot()
        self.next(self.end)

    @step
    def end(self):
        self.seen_end = self.snapshot()

    def snapshot(self):
        return {"text": self.text, "count": self.count, "ratio": self.ratio, "flag": self.flag,
                "verbose": self.verbose, "config": self.config, "max_size": self.max_size}


if __name__ == "__main__":
    ParamsFlow()
