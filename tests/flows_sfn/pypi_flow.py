"""A ``@pypi`` step on Step Functions: its state's job runs in the image built from the flow's lock
(tabulate is in neither the test environment nor the base image)."""

from mfc import FlowSpec, pypi, step


class SfnPypiFlow(FlowSpec):
    @pypi(packages={"tabulate": "0.9.0"})
    @step
    def start(self):
        import tabulate

        self.version = tabulate.__version__
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SfnPypiFlow()
