"""A flow for the client tests: parameters, logs, a retried step, a foreach and its join,
a large artifact and values that need HTML escaping."""

import sys

from mfc import FlowSpec, Parameter, current, retry, step


class ClientFlow(FlowSpec):
    """Exercise what the client reads."""

    greeting = Parameter("greeting", default="hello")
    count = Parameter("count", default=3)

    @step
    def start(self):
        self.items = [f"item{i}" for i in range(self.count)]
        self.markup = "<b>bold</b> & \"quoted\""
        self.big = b"x" * (200 * 1024)
        self.long_text = "y" * 5000
        print("start says hi")
        print("start warns", file=sys.stderr)
        self.next(self.flaky)

    @retry(times=1, minutes_between_retries=0)
    @step
    def flaky(self):
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails on purpose")
        print(f"attempt {current.retry_count} worked")
        self.attempts_needed = current.retry_count + 1
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.item = self.input
        self.shout = self.input.upper()
        print(f"fan {self.input}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.shouts = [inp.shout for inp in inputs]
        self.merge_artifacts(inputs, exclude=["item", "shout"])
        self.next(self.end)

    @step
    def end(self):
        self.message = f"{self.greeting}: {', '.join(self.shouts)}"
        print(self.message)


if __name__ == "__main__":
    ClientFlow()
