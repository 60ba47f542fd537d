"""A branch and a foreach with their joins: the shape of most real flows.

    mfc run examples/branch_foreach.py --scale 3
"""

from mfc import FlowSpec, Parameter, retry, step


class BranchForeachFlow(FlowSpec):
    """Fan out over some numbers, square them in parallel, and compare two summaries."""

    scale = Parameter("scale", default=2, help="Multiply every number by this.")

    @step
    def start(self):
        """Pick the numbers."""
        self.numbers = [n * self.scale for n in range(1, 6)]
        self.next(self.square, foreach="numbers")

    @retry(times=1, minutes_between_retries=0)
    @step
    def square(self):
        """One task per number."""
        self.value = self.input
        self.squared = self.input ** 2
        print(f"{self.input}^2 = {self.squared}")
        self.next(self.gather)

    @step
    def gather(self, inputs):
        """Collect the squares in foreach order."""
        self.squares = [inp.squared for inp in inputs]
        self.next(self.total, self.biggest)

    @step
    def total(self):
        """One branch sums."""
        self.summary = sum(self.squares)
        self.next(self.report)

    @step
    def biggest(self):
        """The other finds the maximum."""
        self.summary = max(self.squares)
        self.next(self.report)

    @step
    def report(self, inputs):
        """Join the branches: keep both summaries."""
        self.total_of_squares = inputs.total.summary
        self.largest_square = inputs.biggest.summary
        self.merge_artifacts(inputs, exclude=["summary"])
        self.next(self.end)

    @step
    def end(self):
        """Print the result."""
        print(f"squares={self.squares} total={self.total_of_squares} largest={self.largest_square}")


if __name__ == "__main__":
    BranchForeachFlow()
