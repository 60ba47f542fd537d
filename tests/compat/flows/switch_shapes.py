"""More switch shapes: a looping switch inside a foreach body (each item repeats its step as many
times as its value), a switch inside one branch of a static split, and a switch whose case skips
a step to reach ``end`` (so ``end`` follows either the switch or that step)."""

from mfc import FlowSpec, Parameter, step


class SwitchShapesFlow(FlowSpec):
    pick = Parameter("pick", default="x", help="x or y")

    @step
    def start(self):
        self.items = [1, 3]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.n = getattr(self, "n", 0) + 1
        self.more = self.n < self.input
        self.next({True: self.each, False: self.after}, condition="more")

    @step
    def after(self):
        self.done = f"{self.input}:{self.n}"
        self.next(self.collect)

    @step
    def collect(self, inputs):
        self.counts = [i.done for i in inputs]
        self.next(self.fork)

    @step
    def fork(self):
        self.next(self.b1, self.b2)

    @step
    def b1(self):
        self.next({"x": self.c, "y": self.d}, condition="pick")

    @step
    def c(self):
        self.v = "c"
        self.next(self.merge)

    @step
    def d(self):
        self.v = "d"
        self.next(self.merge)

    @step
    def b2(self):
        self.v = "b2"
        self.next(self.merge)

    @step
    def merge(self, inputs):
        self.vs = sorted(i.v for i in inputs)
        self.counts = inputs[0].counts
        self.next(self.route)

    @step
    def route(self):
        self.trail = ["route"]
        self.next({"x": self.tail, "y": self.end}, condition="pick")

    @step
    def tail(self):
        self.trail = self.trail + ["tail"]
        self.next(self.end)

    @step
    def end(self):
        print("counts", self.counts, "vs", self.vs, "trail", self.trail)


if __name__ == "__main__":
    SwitchShapesFlow()
