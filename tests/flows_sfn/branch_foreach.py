"""The reference flow of the Step Functions compiler's golden file: a static branch, a foreach
and their joins, with @retry, @catch, @timeout and @resources on their steps."""

from mfc import FlowSpec, Parameter, catch, resources, retry, step, timeout


class SfnReferenceFlow(FlowSpec):
    scale = Parameter("scale", default=2)

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.left, self.right)

    @retry(times=2, minutes_between_retries=1)
    @step
    def left(self):
        self.side = "left"
        self.next(self.join_sides)

    @catch(var="err")
    @timeout(seconds=90)
    @step
    def right(self):
        self.side = "right"
        self.next(self.join_sides)

    @step
    def join_sides(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.items = inputs.left.items
        self.next(self.square, foreach="items")

    @resources(cpu=2, memory=8192)
    @step
    def square(self):
        self.value = self.input * self.input * self.scale
        self.next(self.join_items)

    @step
    def join_items(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.values)


if __name__ == "__main__":
    SfnReferenceFlow()
