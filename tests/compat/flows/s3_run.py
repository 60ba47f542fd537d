"""Metaflow's S3 client inside a step: S3(run=self) writes under the run's prefix, a later step
reads it back. Written against Metaflow; the test rewrites its import line."""

from metaflow import S3, FlowSpec, step


class S3RunFlow(FlowSpec):
    @step
    def start(self):
        with S3(run=self) as s3:
            self.url = s3.put("greeting", "hello from " + self.__class__.__name__)
            s3.put_many([(f"nums/{i}", str(i * i)) for i in range(3)])
        self.next(self.end)

    @step
    def end(self):
        with S3(run=self) as s3:
            self.greeting = s3.get("greeting").text
            self.nums = sorted(obj.text for obj in s3.get_recursive(["nums"]))
        print(self.greeting, self.nums)


if __name__ == "__main__":
    S3RunFlow()
