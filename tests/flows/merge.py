"""merge_artifacts: equal values merge, different values conflict unless excluded or set."""

from mfc import FlowSpec, Parameter, step


class MergeFlow(FlowSpec):
    mode = Parameter("mode", default="exclude", help="exclude | include | explicit | conflict")

    @step
    def start(self):
        self.common = [1, 2, 3]
        self.next(self.a, self.b)

    @step
    def a(self):
        self.same = {"k": 5}
        self.diff = "a"
        self.only_a = "A"
        self.next(self.join)

    @step
    def b(self):
        self.same = {"k": 5}
        self.diff = "b"
        self.next(self.join)

    @step
    def join(self, inputs):
        if self.mode == "exclude":
            self.merge_artifacts(inputs, exclude=["diff"])
        elif self.mode == "include":
            self.merge_artifacts(inputs, include=["same"])
        elif self.mode == "explicit":
            self.diff = "chosen"
            self.merge_artifacts(inputs)
        else:
            self.merge_artifacts(inputs)  # MERGE-CONFLICT
        self.next(self.end)

    @step
    def end(self):
        self.mode_seen = self.mode


if __name__ == "__main__":
    MergeFlow()
