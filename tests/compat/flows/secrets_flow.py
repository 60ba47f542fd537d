"""@secrets: a JSON secret from AWS Secrets Manager becomes environment variables of the step."""

import os

from mfc import FlowSpec, secrets, step


class SecretsFlow(FlowSpec):
    @secrets(sources=[os.environ.get("COMPAT_SECRET_ID", "db-creds")])
    @step
    def start(self):
        self.user = os.environ["DB_USER"]
        self.has_password = bool(os.environ.get("DB_PASSWORD"))
        self.next(self.end)

    @step
    def end(self):
        self.user_in_end = os.environ.get("DB_USER")


if __name__ == "__main__":
    SecretsFlow()
