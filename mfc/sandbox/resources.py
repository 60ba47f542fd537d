"""The AWS resources of the sandbox, created idempotently in moto: the bucket, IAM roles, Batch
compute environments and job queues, the CloudWatch log group Batch writes job logs to, and the
EventBridge bus ``mfc`` that flows' event triggers listen on.

moto's Batch validates like AWS does in part: a managed EC2 compute environment needs a service
role, an instance profile, subnets and a security group that exist (moto's default VPC has them),
and compute-environment and queue names of 3+ characters that start and end alphanumeric. The
"GPU" environment is just another managed EC2 environment with GPU instance types; moto runs its
jobs like any other (no GPU is attached).
"""

from __future__ import annotations

import json
from typing import Any

from mfc.sandbox import BUCKET, CPU_QUEUE, CREDENTIALS, GPU_QUEUE, REGION, endpoint

LOG_GROUP = "/aws/batch/job"  # where moto's Batch (and AWS Batch by default) writes job logs
SERVICES = {  # role name -> service principal that assumes it
    "mfc-sandbox-batch-service": "batch.amazonaws.com",
    "mfc-sandbox-ecs-instance": "ec2.amazonaws.com",
    "mfc-sandbox-batch-job": "ecs-tasks.amazonaws.com",
    "mfc-sandbox-sfn": "states.amazonaws.com",
    "mfc-sandbox-events": "events.amazonaws.com",
}
INSTANCE_PROFILE = "mfc-sandbox-ecs-instance"
COMPUTE_ENVIRONMENTS = {  # name -> (queue, instance types)
    "mfc-sandbox-cpu": (CPU_QUEUE, ["optimal"]),
    "mfc-sandbox-gpu": (GPU_QUEUE, ["g4dn.xlarge", "g5.xlarge"]),
}


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


def _trust(principal: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}]})


def _ensure_roles(iam: Any) -> dict[str, str]:
    arns: dict[str, str] = {}
    for name, principal in SERVICES.items():
        try:
            arns[name] = iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            arns[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust(principal))["Role"]["Arn"]
    try:
        profile = iam.get_instance_profile(InstanceProfileName=INSTANCE_PROFILE)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        profile = iam.create_instance_profile(InstanceProfileName=INSTANCE_PROFILE)["InstanceProfile"]
    if not any(r["RoleName"] == INSTANCE_PROFILE for r in profile.get("Roles", [])):
        iam.add_role_to_instance_profile(InstanceProfileName=INSTANCE_PROFILE, RoleName=INSTANCE_PROFILE)
    arns["instance_profile"] = profile["Arn"]
    return arns


def _default_network(ec2: Any) -> tuple[list[str], list[str]]:
    """Subnets and the default security group of moto's default VPC."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    vpc_filter = [{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}] if vpcs else []
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]]
    groups = ec2.describe_security_groups(Filters=vpc_filter + [{"Name": "group-name", "Values": ["default"]}])
    return subnets[:2], [g["GroupId"] for g in groups["SecurityGroups"]][:1]


def _ensure_batch(batch: Any, ec2: Any, service_role: str, instance_profile: str) -> None:
    existing = {ce["computeEnvironmentName"]: ce for ce in batch.describe_compute_environments()["computeEnvironments"]}
    queues = {q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]}
    network: tuple[list[str], list[str]] | None = None
    for name, (queue, instance_types) in COMPUTE_ENVIRONMENTS.items():
        if name in existing:
            ce_arn = existing[name]["computeEnvironmentArn"]
        else:
            network = network or _default_network(ec2)
            ce_arn = batch.create_compute_environment(
                computeEnvironmentName=name, type="MANAGED", state="ENABLED", serviceRole=service_role,
                computeResources={
                    "type": "EC2", "minvCpus": 0, "maxvCpus": 256, "instanceTypes": instance_types,
                    "subnets": network[0], "securityGroupIds": network[1], "instanceRole": instance_profile,
                },
            )["computeEnvironmentArn"]
        if queue not in queues:
            batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1,
                                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce_arn}])


def _ensure_bucket(s3: Any) -> None:
    try:
        s3.head_bucket(Bucket=BUCKET)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=BUCKET)


def _ensure_log_group(logs: Any) -> None:
    found = logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
    if not any(g["logGroupName"] == LOG_GROUP for g in found):
        logs.create_log_group(logGroupName=LOG_GROUP)


def _ensure_event_bus(events: Any) -> None:
    """The custom bus of ``mfc event publish`` and the @trigger rules."""
    from mfc.events.names import EVENT_BUS

    try:
        events.describe_event_bus(Name=EVENT_BUS)
    except events.exceptions.ResourceNotFoundException:
        events.create_event_bus(Name=EVENT_BUS)


def ensure(port: int) -> dict[str, str]:
    """Create whatever is missing; return the ARNs the profile needs (``batch_job_role``,
    ``sfn_role``, ``events_role``)."""
    _ensure_bucket(client("s3", port))
    roles = _ensure_roles(client("iam", port))
    _ensure_batch(client("batch", port), client("ec2", port), roles["mfc-sandbox-batch-service"],
                  roles["instance_profile"])
    _ensure_log_group(client("logs", port))
    _ensure_event_bus(client("events", port))
    return {
        "batch_job_role": roles["mfc-sandbox-batch-job"],
        "sfn_role": roles["mfc-sandbox-sfn"],
        "events_role": roles["mfc-sandbox-events"],
    }


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
