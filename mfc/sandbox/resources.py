"""The AWS resources of the sandbox: mfc's CloudFormation template
(``deploy/cloudformation/mfc.yaml``, the one users deploy to AWS) deployed into moto's
CloudFormation as stack ``mfc-sandbox``, so every change to the template is exercised by the
tests; the profile's settings come from the stack's outputs, as `mfc configure --from-stack` reads
them.

The sandbox's parameters: the bucket ``mfc-sandbox`` with the datastore under ``mfc/``, queues
``mfc-cpu`` and ``mfc-gpu``, moto's default VPC (``CreateVpc=false``: moto cannot delete the VPC
endpoints of a VPC it made). What moto cannot create from a template, or what the template leaves
to mfc, is created directly: the EventBridge bus ``mfc`` (mfc makes it on demand; @trigger tests
expect it), and images go to the sandbox's own registry (moto's ECR stores no layers).

moto's Batch validates like AWS in part: a managed EC2 compute environment needs a service role,
an instance profile, subnets and a security group that exist. The "GPU" environment is just
another managed EC2 environment with GPU instance types; moto runs its jobs like any other (no
GPU is attached).
"""

from __future__ import annotations

from typing import Any

from mfc.sandbox import BUCKET, CREDENTIALS, REGION, endpoint

LOG_GROUP = "/aws/batch/job"  # where moto's Batch (and AWS Batch by default) writes job logs
STACK = "mfc-sandbox"
PARAMETERS = {"Namespace": "mfc", "BucketName": BUCKET, "DatastorePrefix": "mfc", "CreateVpc": "false"}


def client(service: str, port: int) -> Any:
    """A boto3 client for the sandbox on ``port`` (dummy credentials; moto accepts any)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, region_name=REGION, endpoint_url=endpoint(port),
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


def _default_network(ec2: Any) -> tuple[str, list[str]]:
    """moto's default VPC and two of its subnets."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    return vpc, sorted(s["SubnetId"] for s in subnets)[:2]


def _ensure_event_bus(events: Any) -> None:
    """The custom bus of ``mfc event publish`` and the @trigger rules."""
    from mfc.events.names import EVENT_BUS

    try:
        events.describe_event_bus(Name=EVENT_BUS)
    except events.exceptions.ResourceNotFoundException:
        events.create_event_bus(Name=EVENT_BUS)


def ensure(port: int) -> dict[str, Any]:
    """Deploy (or update) the template into moto and create what it leaves out; returns the settings
    its outputs fill (``datastore_root``, ``batch_queue``, ``batch_job_role``, ``sfn_role``,
    ``events_role``, ...)."""
    from mfc.deploy.configure import profile_values
    from mfc.deploy.stack import deploy

    config = {"aws_region": REGION, "aws_endpoint_url": endpoint(port), "s3_endpoint_url": endpoint(port)}
    vpc, subnets = _default_network(client("ec2", port))
    deploy(config, STACK, {**PARAMETERS, "VpcId": vpc, "SubnetIds": ",".join(subnets)}, echo=lambda _line: None)
    _ensure_event_bus(client("events", port))
    return profile_values(config, STACK)


def describe(port: int) -> dict[str, Any]:
    """What exists now: ``{"bucket": bool, "queues": [{name, state, status}], "compute_environments":
    [{name, state, status}], "log_group": bool}``."""
    s3 = client("s3", port)
    batch = client("batch", port)
    try:
        s3.head_bucket(Bucket=BUCKET)
        bucket = True
    except s3.exceptions.ClientError:
        bucket = False
    queues = [{"name": q["jobQueueName"], "state": q.get("state"), "status": q.get("status")}
              for q in batch.describe_job_queues()["jobQueues"]]
    ces = [{"name": c["computeEnvironmentName"], "state": c.get("state"), "status": c.get("status")}
           for c in batch.describe_compute_environments()["computeEnvironments"]]
    groups = client("logs", port).describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
    return {"bucket": bucket, "queues": queues, "compute_environments": ces,
            "log_group": any(g["logGroupName"] == LOG_GROUP for g in groups)}
