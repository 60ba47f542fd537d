"""Branches and a foreach with their joins: what a join sees, and the order of its inputs."""

import time

from mfc import FlowSpec, Parameter, step


class JoinFlow(FlowSpec):
    alpha = Parameter("alpha", default=2, help="A parameter every step sees")

    @step
    def start(self):
        self.shared = "from start"
        self.next(self.c, self.a, self.b)

    @step
    def a(self):
        time.sleep(0.2)
        self.branch = "a"
        self.common = 7
        self.label = "label of a"
        self.frames = [1, 2]
        self.next(self.join_branches)

    @step
    def b(self):
        time.sleep(0.1)
        self.branch = "b"
        self.common = 7
        self.next(self.join_branches)

    @step
    def c(self):
        self.branch = "c"
        self.common = 7
        self.next(self.join_branches)

    @step
    def join_branches(self, inputs):
        self.branch_order = [inp.branch for inp in inputs]
        self.sees_shared_before_merge = hasattr(self, "shared")
        self.sees_common_before_merge = hasattr(self, "common")
        self.alpha_in_join = self.alpha
        self.from_b = inputs.b.branch
        self.a_label = inputs.a.label
        self.a_frames = inputs.a.frames
        self.merge_artifacts(inputs, exclude=["branch", "label", "frames"])
        self.items = ["i0", "i1", "i2", "i3", "i4", "i5"]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(0.05 * (len(self.items) - self.index))  # later items finish first
        self.item = self.input
        self.position = self.index
        self.stack = self.foreach_stack()
        print(f"work on {self.input}")
        self.next(self.join_items)

    @step
    def join_items(self, inputs):
        self.items_seen = [inp.item for inp in inputs]
        self.positions = [inp.position for inp in inputs]
        self.input_indexes = [inp.index for inp in inputs]
        self.inputs_input = [inp.input for inp in inputs]
        self.common_after = inputs[0].common
        self.next(self.end)

    @step
    def end(self):
        self.alpha_in_end = self.alpha


if __name__ == "__main__":
    JoinFlow()
