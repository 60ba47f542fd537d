from metaflow import FlowSpec, JSONType, Parameter, step


class GridSearchFlow(FlowSpec):
    """A grid search as a nested foreach: learning rates outside, depths inside."""

    learning_rates = Parameter("learning_rates", type=JSONType, default="[0.1, 0.01, 0.001]")
    depths = Parameter("depths", type=JSONType, default="[1, 2, 3]")

    @step
    def start(self):
        self.lrs = list(self.learning_rates)
        self.next(self.per_rate, foreach="lrs")

    @step
    def per_rate(self):
        self.lr = self.input
        self.depth_list = list(self.depths)
        self.next(self.fit, foreach="depth_list")

    @step
    def fit(self):
        self.depth = self.input
        self.score = round(1 - self.lr * self.depth ** 2, 6)
        self.position = [(index, num) for index, num, _ in self.foreach_stack()]
        self.next(self.best_depth)

    @step
    def best_depth(self, inputs):
        self.scores = [inp.score for inp in inputs]
        self.positions = [inp.position for inp in inputs]
        best = max(inputs, key=lambda inp: inp.score)
        self.best = (best.depth, best.score)
        self.merge_artifacts(inputs, include=["lr"])
        self.next(self.best_rate)

    @step
    def best_rate(self, inputs):
        self.table = {str(inp.lr): inp.scores for inp in inputs}
        self.rate_order = [inp.lr for inp in inputs]
        self.positions = [inp.positions for inp in inputs]
        self.winner = max(((inp.lr,) + tuple(inp.best) for inp in inputs), key=lambda row: row[2])
        self.next(self.end)

    @step
    def end(self):
        print("best (lr, depth, score):", self.winner)


if __name__ == "__main__":
    GridSearchFlow()
