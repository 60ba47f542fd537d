"""A foreach inside a foreach: foreach_stack(), self.input and self.index at every level."""

from mfc import FlowSpec, step


class NestedForeachCompatFlow(FlowSpec):
    @step
    def start(self):
        self.letters = ["x", "y"]
        self.next(self.outer, foreach="letters")

    @step
    def outer(self):
        self.letter = self.input
        self.numbers = [1, 2, 3]
        self.next(self.inner, foreach="numbers")

    @step
    def inner(self):
        self.cell = f"{self.letter}{self.input}"
        self.inner_index = self.index
        self.stack = self.foreach_stack()
        self.next(self.join_inner)

    @step
    def join_inner(self, inputs):
        self.cells = [inp.cell for inp in inputs]
        self.merge_artifacts(inputs, include=["letter"])
        self.outer_index_after_join = self.index
        self.outer_input_after_join = self.input
        self.next(self.join_outer)

    @step
    def join_outer(self, inputs):
        self.grid = [inp.cells for inp in inputs]
        self.letters_seen = [inp.letter for inp in inputs]
        self.after = [(inp.outer_index_after_join, inp.outer_input_after_join) for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestedForeachCompatFlow()
