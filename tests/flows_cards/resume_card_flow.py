"""start has a card; end fails while CARD_FLOW_FAIL is set, so a resume clones start."""

import os

from mfc import FlowSpec, card, current, step
from mfc.cards import Markdown


class ResumeCardFlow(FlowSpec):
    @card
    @step
    def start(self):
        current.card.append(Markdown("from the origin run"))
        self.next(self.end)

    @step
    def end(self):
        if os.environ.get("CARD_FLOW_FAIL"):
            raise RuntimeError("fails on purpose")


if __name__ == "__main__":
    ResumeCardFlow()
