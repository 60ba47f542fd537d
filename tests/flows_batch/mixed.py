"""Local steps around one ``@batch(gpu=1)`` step: one run on two executors."""

import os

from mfc import FlowSpec, batch, step


class BatchMixedFlow(FlowSpec):
    @step
    def start(self):
        self.where_start = os.environ.get("AWS_BATCH_JOB_ID")
        self.x = 20
        self.next(self.train)

    @batch(gpu=1, cpu=2, memory=2048)
    @step
    def train(self):
        self.where_train = os.environ.get("AWS_BATCH_JOB_ID")
        self.y = self.x + 1
        print(f"trained on {self.where_train}")
        self.next(self.end)

    @step
    def end(self):
        self.where_end = os.environ.get("AWS_BATCH_JOB_ID")
        self.result = self.y * 2


if __name__ == "__main__":
    BatchMixedFlow()
