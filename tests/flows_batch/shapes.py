"""A branch, a foreach and their joins; step ``b`` fails on its first attempt and succeeds on
its retry. Every task prints a line, so its logs can be checked."""

import os

from mfc import FlowSpec, current, retry, step


class BatchShapesFlow(FlowSpec):
    @step
    def start(self):
        self.items = [3, 1, 2]
        print(f"start on {os.environ.get('AWS_BATCH_JOB_ID', 'no batch job')}")
        self.next(self.a, self.b)

    @step
    def a(self):
        self.side = "a"
        self.next(self.join_ab)

    @retry(times=1, minutes_between_retries=0)
    @step
    def b(self):
        print(f"b attempt {current.retry_count}")
        if current.retry_count == 0:
            raise RuntimeError("b fails on its first attempt")
        self.side = "b"
        self.b_attempt = current.retry_count
        self.next(self.join_ab)

    @step
    def join_ab(self, inputs):
        self.sides = [i.side for i in inputs]
        self.b_attempt = inputs.b.b_attempt
        self.items = inputs.a.items
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input * self.input
        print(f"square {self.input} -> {self.value}")
        self.next(self.join_items)

    @step
    def join_items(self, inputs):
        self.values = [i.value for i in inputs]
        self.merge_artifacts(inputs, include=["sides", "b_attempt"])
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.values)
        print(f"total {self.total}")


if __name__ == "__main__":
    BatchShapesFlow()
