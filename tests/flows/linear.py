"""Linear: artifacts propagate through steps, some unchanged, some modified."""

from mfc import FlowSpec, step


class LinearFlow(FlowSpec):
    """Three steps in a row."""

    @step
    def start(self):
        """Set the first artifacts."""
        self.kept = "unchanged text"
        self.count = 1
        self.items = [1, 2]
        self.next(self.middle)

    @step
    def middle(self):
        """Modify some of them."""
        self.count += 10
        self.items = self.items + [3]
        self.added = {"from": "middle"}
        self.next(self.end)

    @step
    def end(self):
        """Derive one more."""
        self.summary = f"{self.kept}|{self.count}|{sum(self.items)}|{self.added['from']}"


if __name__ == "__main__":
    LinearFlow()
