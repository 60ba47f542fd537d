from metaflow import FlowSpec, catch, step


class CatchFlow(FlowSpec):
    """The @catch example of Metaflow's documentation."""

    @step
    def start(self):
        self.params = range(3)
        self.next(self.compute, foreach="params")

    @catch(var="compute_failed")
    @step
    def compute(self):
        self.div = self.input
        self.x = 5 / self.div
        self.next(self.join)

    @step
    def join(self, inputs):
        self.failed_params = []
        self.results = []
        for input in inputs:
            if input.compute_failed:
                print(f"compute failed for parameter: {input.div}")
                self.failed_params.append(input.div)
            else:
                self.results.append(input.x)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CatchFlow()
