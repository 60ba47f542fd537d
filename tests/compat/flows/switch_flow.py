"""Switch transitions (Metaflow >= 2.15): a switch on a parameter, a switch whose case repeats
its own step (a loop), a switch inside a foreach whose item picks the branch, and a static split
inside one case."""

import os

from mfc import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    mode = Parameter("mode", default="fast", help="fast, slow or fanout")
    rounds = Parameter("rounds", default=3, help="how often the loop step runs")

    @step
    def start(self):
        self.route = self.mode
        self.next({"fast": self.fast, "slow": self.slow, "fanout": self.fanout}, condition="route")

    @step
    def fast(self):
        self.path = ["fast"]
        self.count = 0
        self.next(self.loop)

    @step
    def slow(self):
        self.path = ["slow"]
        self.count = 10
        self.next(self.loop)

    @step
    def fanout(self):
        self.path = ["fanout"]
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "left"
        self.next(self.rejoin)

    @step
    def right(self):
        self.side = "right"
        self.next(self.rejoin)

    @step
    def rejoin(self, inputs):
        self.path = inputs[0].path + ["+".join(i.side for i in inputs)]
        self.count = 0
        self.next(self.loop)

    @step
    def loop(self):
        self.count += 1
        self.path = self.path + [f"loop{self.count}"]
        self.again = self.count % 10 < self.rounds
        self.next({True: self.loop, False: self.items}, condition="again")

    @step
    def items(self):
        self.kinds = ["even", "odd", "even"]
        self.next(self.classify, foreach="kinds")

    @step
    def classify(self):
        self.kind = self.input
        self.next({"even": self.even, "odd": self.odd}, condition="kind")

    @step
    def even(self):
        self.label = f"{self.index}:even"
        self.next(self.gather)

    @step
    def odd(self):
        self.label = f"{self.index}:odd"
        self.next(self.gather)

    @step
    def gather(self, inputs):
        if os.environ.get("COMPAT_FAIL_GATHER"):
            raise RuntimeError("gather fails on purpose")
        self.labels = [i.label for i in inputs]
        self.path = inputs[0].path
        self.next(self.end)

    @step
    def end(self):
        print("path", self.path, "labels", self.labels)


if __name__ == "__main__":
    SwitchFlow()
