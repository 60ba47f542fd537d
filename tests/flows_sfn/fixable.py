"""A flow whose middle step fails until BROKEN is set to False (a fix deployed before a resume)."""

from mfc import FlowSpec, step

BROKEN = True


class FixableFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.square = self.input * self.input
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.next(self.check)

    @step
    def check(self):
        print(f"checking total {self.total}", flush=True)
        if BROKEN:
            raise RuntimeError("the check is broken")
        self.checked = True
        self.next(self.end)

    @step
    def end(self):
        self.result = (self.total, self.checked)


if __name__ == "__main__":
    FixableFlow()
