"""A Metaflow flow with cards: the tests run it under Metaflow as it is, and under mfc with only
its import lines changed."""

from metaflow import FlowSpec, card, current, step
from metaflow.cards import Artifact, Image, Markdown, Table

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class PortableCardFlow(FlowSpec):
    @card
    @step
    def start(self):
        self.value = 7
        current.card.append(Markdown("# Portable"))
        current.card.append(Table([["a", Artifact(1)]], headers=["k", "v"]))
        current.card.append(Image(PNG, label="pixel"))
        self.next(self.end)

    @card(type="blank", id="notes")
    @step
    def end(self):
        current.card["notes"].append(Markdown("the end"))


if __name__ == "__main__":
    PortableCardFlow()
