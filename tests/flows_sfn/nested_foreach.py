"""A foreach inside a foreach: each inner join sees only its own items."""

from mfc import FlowSpec, step


class SfnNestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.outer = [1, 2]
        self.next(self.outer_body, foreach="outer")

    @step
    def outer_body(self):
        self.inner = [self.input * 10 + k for k in range(3)]
        self.next(self.inner_body, foreach="inner")

    @step
    def inner_body(self):
        self.val = self.input
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.vals = [i.val for i in inputs]
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_vals = [i.vals for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SfnNestedForeachFlow()
