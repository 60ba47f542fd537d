"""``@secrets`` and ``S3(run=self)`` in containers: ``start`` runs in a local container, ``middle``
and ``end`` as Batch jobs; each step hands the next a file through the run's S3 prefix."""

import os

from mfc import S3, FlowSpec, secrets, step

SECRET = "mfc-test/db-creds"


class CloudSecretsFlow(FlowSpec):
    @secrets(sources=[SECRET])
    @step
    def start(self):
        self.start_user = os.environ["DB_USER"]
        self.start_job = os.environ.get("AWS_BATCH_JOB_ID")
        with S3(run=self) as s3:
            s3.put("from-start.txt", f"start saw {os.environ['DB_USER']}")
        self.next(self.middle)

    @secrets(sources=[SECRET])
    @step
    def middle(self):
        self.middle_user = os.environ["DB_USER"]
        self.middle_password_length = len(os.environ["DB_PASSWORD"])
        self.middle_job = os.environ.get("AWS_BATCH_JOB_ID")
        with S3(run=self) as s3:
            self.from_start = s3.get("from-start.txt").text
            s3.put("from-middle.txt", f"middle saw {os.environ['DB_USER']}")
        self.next(self.end)

    @step
    def end(self):
        self.end_user = os.environ.get("DB_USER")  # only the decorated steps get the secret
        self.end_job = os.environ.get("AWS_BATCH_JOB_ID")
        with S3(run=self) as s3:
            self.from_middle = s3.get("from-middle.txt").text


if __name__ == "__main__":
    CloudSecretsFlow()
