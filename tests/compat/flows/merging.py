"""merge_artifacts: agreeing values merge, values set before the call win, include/exclude
select, and disagreeing values are an error."""

from mfc import FlowSpec, Parameter, step


class MergeCompatFlow(FlowSpec):
    conflict = Parameter("conflict", default="no", help="'yes' leaves a conflict unresolved")

    @step
    def start(self):
        self.base = "same everywhere"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.same = {"k": 1}
        self.diff = "from a"
        self.only_a = "A"
        self.next(self.join_all)

    @step
    def b(self):
        self.same = {"k": 1}
        self.diff = "from b"
        self.next(self.join_all)

    @step
    def join_all(self, inputs):
        if self.conflict == "no":
            self.diff = "chosen in join"
        self.merge_artifacts(inputs)
        self.next(self.c, self.d)

    @step
    def c(self):
        self.x = "c"
        self.y = 1
        self.z = 2
        self.next(self.join_selected)

    @step
    def d(self):
        self.x = "d"
        self.y = 1
        self.z = 2
        self.next(self.join_selected)

    @step
    def join_selected(self, inputs):
        self.merge_artifacts(inputs, include=["y"])
        self.has_z_after_include = hasattr(self, "z")
        self.merge_artifacts(inputs, exclude=["x"])
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MergeCompatFlow()
