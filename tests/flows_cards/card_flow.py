"""A flow for the card tests: a default card with every component, several cards on one step,
a component whose render raises, a render past its timeout, and current.card without @card."""

import time

from mfc import FlowSpec, card, current, step
from mfc.cards import Artifact, CardComponent, Image, Markdown, MetaflowCard, Table, register_card_type

# The smallest valid PNG: one transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class Boom(CardComponent):
    def render(self):
        raise ValueError("this component cannot render")


class Slow(CardComponent):
    def render(self):
        time.sleep(30)
        return "<p>too late</p>"


@register_card_type
class Exploding(MetaflowCard):
    type = "exploding"

    def render(self, task):
        raise RuntimeError("the exploding card type always fails")


class CardFlow(FlowSpec):
    """Cards of every kind."""

    @card
    @step
    def start(self):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.evil = "<script>alert('artifact')</script>"
        self.numbers = list(range(5))
        current.card.append(Markdown("# Report <script>alert('md')</script>\n\n*emphasis* and [x](javascript:alert(1))"))
        current.card.append(Table([[1, Artifact({"a": 1})], ["<i>cell</i>", Markdown("**inner**")]], headers=["n", "<v>"]))
        current.card.append(Image(PNG, label="tiny <png>"))
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        current.card.append(Image.from_matplotlib(fig, label="plot"))
        current.card.append(Artifact(self.numbers, name="numbers"))
        self.next(self.multi)

    @card(type="blank", id="summary")
    @card(id="details")
    @card
    @step
    def multi(self):
        current.card.append(Markdown("to the card without an id"))
        current.card["summary"].append(Markdown("summary text"))
        current.card["details"].append(Artifact(42, name="answer"))
        current.card["nope"].append(Markdown("lost"))
        self.next(self.broken)

    @card(type="blank")
    @step
    def broken(self):
        current.card.append(Markdown("before the broken one"))
        current.card.append(Boom())
        self.next(self.slow)

    @card(type="blank", timeout=1)
    @step
    def slow(self):
        current.card.append(Slow())
        self.next(self.custom)

    @card(type="nosuchtype", id="unknown")
    @card(type="exploding")
    @step
    def custom(self):
        self.next(self.plain)

    @step
    def plain(self):
        current.card.append(Markdown("nobody sees this"))
        current.card.append(Markdown("nor this"))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CardFlow()
