"""A step whose ``@secrets`` names a secret that does not exist."""

from mfc import FlowSpec, secrets, step


class MissingSecretFlow(FlowSpec):
    @secrets(sources=["mfc-test/no-such-secret"])
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MissingSecretFlow()
