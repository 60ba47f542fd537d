"""The smallest flow: start -> hello -> end. Run it with `mfc run examples/hello.py`."""

from mfc import FlowSpec, Parameter, step


class HelloFlow(FlowSpec):
    """Say hello, count the letters."""

    name_to_greet = Parameter("who", default="world", help="Who to greet.")

    @step
    def start(self):
        """Build the greeting."""
        self.greeting = f"Hello, {self.name_to_greet}!"
        self.next(self.hello)

    @step
    def hello(self):
        """Print it."""
        print(self.greeting)
        self.letters = sum(c.isalpha() for c in self.greeting)
        self.next(self.end)

    @step
    def end(self):
        """Done."""
        print(f"{self.letters} letters")


if __name__ == "__main__":
    HelloFlow()
