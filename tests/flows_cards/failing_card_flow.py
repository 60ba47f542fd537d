"""A step with @card that fails: as in Metaflow, the failed attempt has no card."""

from mfc import FlowSpec, card, current, step
from mfc.cards import Markdown


class FailingCardFlow(FlowSpec):
    @card
    @step
    def start(self):
        current.card.append(Markdown("never rendered"))
        if current.retry_count == 0:
            raise RuntimeError("fails on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingCardFlow()
