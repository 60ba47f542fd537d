"""A step that allocates far more memory than its @resources(memory=64) allows."""

from mfc import FlowSpec, resources, step


class HungryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.eat)

    @resources(memory=64)
    @step
    def eat(self):
        blocks = [bytearray(16 * 1024 * 1024) for _ in range(32)]
        self.size = sum(len(b) for b in blocks)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HungryFlow()
