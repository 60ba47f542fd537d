"""A flow whose start has no @card and whose end has one; it never imports mfc.cards itself."""

from mfc import FlowSpec, card, step


class PlainFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @card
    @step
    def end(self):
        self.y = 2


if __name__ == "__main__":
    PlainFlow()
