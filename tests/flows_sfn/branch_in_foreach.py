"""A static branch inside each iteration of a foreach."""

from mfc import FlowSpec, step


class SfnBranchInForeachFlow(FlowSpec):
    @step
    def start(self):
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
        self.pair = (inputs.double.r, inputs.square.r)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pairs = [i.pair for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SfnBranchInForeachFlow()
