"""IncludeFile content, a 20 MB bytes artifact and a numpy array, round-tripped."""

import hashlib
import os

import numpy as np

from mfc import FlowSpec, IncludeFile, step


class DataFlow(FlowSpec):
    text = IncludeFile("text", help="A text file")
    blob = IncludeFile("blob", is_text=False, help="A binary file")

    @step
    def start(self):
        self.big = os.urandom(20 * 1024 * 1024)
        self.big_sha = hashlib.sha256(self.big).hexdigest()
        self.matrix = np.arange(12, dtype=np.float64).reshape(3, 4) / 7.0
        self.next(self.check)

    @step
    def check(self):
        self.big_sha_seen = hashlib.sha256(self.big).hexdigest()
        self.big_len_seen = len(self.big)
        self.matrix_sum = float(self.matrix.sum())
        self.text_seen = self.text
        self.blob_len = len(self.blob)
        self.scaled = self.matrix * 2
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DataFlow()
