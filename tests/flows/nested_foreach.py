"""A foreach inside a foreach: each inner join sees only its own items."""

from mfc import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.outer = [1, 2]
        self.next(self.outer_body, foreach="outer")

    @step
    def outer_body(self):
        self.o = self.input
        self.inner = [self.o * 10 + k for k in range(3)]
        self.next(self.inner_body, foreach="inner")

    @step
    def inner_body(self):
        self.val = self.input
        self.stack = [(index, num, value) for index, num, value in self.foreach_stack()]
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.vals = [inp.val for inp in inputs]
        self.o_seen = sorted({inp.o for inp in inputs})
        self.after_inner_index = self.index
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_vals = [inp.vals for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestedForeachFlow()
