"""A foreach inside one branch of a static split, a plain step in the other."""

from mfc import FlowSpec, step


class SfnForeachInBranchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.fan, self.plain)

    @step
    def plain(self):
        self.tag = "plain"
        self.next(self.join)

    @step
    def fan(self):
        self.nums = [1, 2, 3]
        self.next(self.item, foreach="nums")

    @step
    def item(self):
        self.r = self.input * 2
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        self.rs = [i.r for i in inputs]
        self.tag = "fan"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.rs = inputs.fan_join.rs
        self.tags = sorted(i.tag for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SfnForeachInBranchFlow()
