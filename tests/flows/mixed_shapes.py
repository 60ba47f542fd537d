"""A branch inside a foreach, and a foreach inside a branch."""

from mfc import FlowSpec, step


class MixedShapesFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.fan, self.plain)

    @step
    def plain(self):
        self.tag = "plain"
        self.next(self.join)

    @step
    def fan(self):
        self.nums = [3, 5]
        self.next(self.item, foreach="nums")

    @step
    def item(self):
        self.n = self.input
        self.next(self.double, self.square)

    @step
    def double(self):
        self.r = self.n * 2
        self.next(self.item_join)

    @step
    def square(self):
        self.r = self.n ** 2
        self.next(self.item_join)

    @step
    def item_join(self, inputs):
        self.pair = (self.input, inputs.double.r, inputs.square.r)
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        self.pairs = [inp.pair for inp in inputs]
        self.tag = "fan"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pairs = inputs.fan_join.pairs
        self.tags = [inp.tag for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MixedShapesFlow()
