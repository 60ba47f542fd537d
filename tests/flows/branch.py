"""Static branches (declared b before a), a nested branch, a join, parameters in every step."""

from mfc import FlowSpec, Parameter, step


class BranchFlow(FlowSpec):
    """start -> (b, a); a -> (a1, a2) -> ajoin; join(b, ajoin) -> end."""

    greeting = Parameter("greeting", default="hi")

    @step
    def start(self):
        self.common = "shared"
        self.x = 0
        self.p_start = self.greeting
        self.next(self.b, self.a)

    @step
    def b(self):
        self.x = "from b"
        self.who = "b"
        self.p_b = self.greeting
        self.next(self.join)

    @step
    def a(self):
        self.x = "from a"
        self.p_a = self.greeting
        self.next(self.a2, self.a1)

    @step
    def a1(self):
        self.leaf = "a1"
        self.next(self.ajoin)

    @step
    def a2(self):
        self.leaf = "a2"
        self.next(self.ajoin)

    @step
    def ajoin(self, inputs):
        """Inner join."""
        self.leaves = [inp.leaf for inp in inputs]
        self.x = inputs.a1.x
        self.who = "a"
        self.p_ajoin = self.greeting
        self.next(self.join)

    @step
    def join(self, inputs):
        """Outer join."""
        self.order = [inp.who for inp in inputs]
        self.from_a = inputs.ajoin.x
        self.from_b = inputs.b.x
        self.leaves = inputs.ajoin.leaves
        self.p_join = self.greeting
        self.merge_artifacts(inputs, include=["common"])
        self.next(self.end)

    @step
    def end(self):
        self.p_end = self.greeting


if __name__ == "__main__":
    BranchFlow()
