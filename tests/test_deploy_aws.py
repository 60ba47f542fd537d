"""`mfc deploy aws`, `mfc configure --from-stack` and `mfc doctor` against a real moto server over
HTTP: the template deployed into moto's CloudFormation, a profile from its outputs, doctor on it
and on broken ones, and the bad inputs (a stack that is not mfc's, a failed resource, a refused
permission, a profile whose stack was deleted).

moto creates stacks synchronously and never records a failed resource's event (an error comes
back from CreateStack instead), so the event path of a failure is tested in
test_deploy_template.py; moto has no iam:SimulatePrincipalPolicy, so doctor reads the roles'
policies here.
"""

from __future__ import annotations

import json

import pytest
from moto_server import MotoServer
from support import mfc

from mfc.sandbox.profile import read_profile, write_profile


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """A moto server with mfc's stack `mfc` deployed by `mfc deploy aws`, and the env to reach it."""
    config = tmp_path_factory.mktemp("deploy") / "config.toml"
    with MotoServer() as server:
        env = {**server.env(), "MFC_AWS_ENDPOINT_URL": server.endpoint, "MFC_CONFIG": str(config)}
        deployed = mfc(None, "deploy", "aws", env=env, timeout=300)
        yield server, env, config, deployed


def _cli(env, *args, **kwargs):
    proc = mfc(None, *args, env=env, timeout=300, **kwargs)
    return proc, proc.stdout + proc.stderr


def _doctor_line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if f"  {name}:" in line)


def test_deploy_creates_the_stack_printing_its_events(aws):
    server, _, _, deployed = aws
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    out = deployed.stdout
    assert "creating stack mfc" in out
    # moto records the stack's own events only (AWS adds one per resource, printed the same way).
    assert "  mfc (AWS::CloudFormation::Stack)  CREATE_IN_PROGRESS  User Initiated\n" in out
    assert "  mfc (AWS::CloudFormation::Stack)  CREATE_COMPLETE\n" in out
    resources = server.client("cloudformation").list_stack_resources(StackName="mfc")["StackResourceSummaries"]
    assert f"stack mfc: CREATE_COMPLETE ({len(resources)} resources)" in out
    assert {"Bucket", "CpuQueue", "GpuQueue", "StepFunctionsRole", "JobLogGroup"} <= {
        r["LogicalResourceId"] for r in resources}
    assert "Vpc" in {r["LogicalResourceId"] for r in resources}  # CreateVpc defaults to true
    queues = server.client("batch").describe_job_queues()["jobQueues"]
    assert {(q["jobQueueName"], q["state"]) for q in queues} == {("mfc-cpu", "ENABLED"), ("mfc-gpu", "ENABLED")}
    stack = server.client("cloudformation").describe_stacks(StackName="mfc")["Stacks"][0]
    assert {"Key": "mfc:stack", "Value": "mfc"} in stack["Tags"]


def test_deploy_again_is_an_update_that_changes_nothing_and_dry_run_says_so(aws):
    _, env, _, _ = aws
    proc, out = _cli(env, "deploy", "aws")
    assert proc.returncode == 0, out
    assert "stack mfc is up to date" in out
    proc, out = _cli(env, "deploy", "aws", "--dry-run")
    assert proc.returncode == 0, out
    assert "update would change nothing" in out


def test_dry_run_of_a_new_stack_lists_its_resources_and_leaves_nothing(aws):
    server, env, _, _ = aws
    proc, out = _cli(env, "deploy", "aws", "--stack", "preview", "--dry-run", "-p", "Namespace=preview")
    assert proc.returncode == 0, out
    assert "stack preview: create would make" in out
    assert "Add     CpuQueue (AWS::Batch::JobQueue)" in out
    names = [s["StackName"] for s in server.client("cloudformation").describe_stacks()["Stacks"]
             if s["StackStatus"] != "DELETE_COMPLETE"]
    assert "preview" not in names


def test_configure_from_stack_writes_a_profile_of_its_outputs_and_keeps_others(aws):
    server, env, config, _ = aws
    write_profile(str(config), "other", {"max_workers": 3})
    write_profile(str(config), "aws", {"max_workers": 5, "batch_queue": "stale"})
    proc, out = _cli(env, "configure", "--from-stack", "mfc", "--profile", "aws")
    assert proc.returncode == 0, out
    profile = read_profile(str(config), "aws")
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in server.client("cloudformation").describe_stacks(StackName="mfc")["Stacks"][0]["Outputs"]}
    assert profile["datastore_root"] == outputs["DatastoreRoot"] == "s3://mfc-123456789012-us-east-1/data"
    assert profile["batch_queue"] == "mfc-cpu" and profile["batch_gpu_queue"] == "mfc-gpu"
    assert profile["sfn_role"] == outputs["SfnRole"] and profile["events_role"] == outputs["EventsRole"]
    assert profile["batch_job_role"] == outputs["BatchJobRole"]
    assert profile["image_registry"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/mfc"
    assert profile["aws_endpoint_url"] == server.endpoint and profile["aws_stack"] == "mfc"
    assert read_profile(str(config), "other") == {"max_workers": 3}
    assert profile["max_workers"] == 5  # the profile's own settings stay; the stack's are replaced
    shown, out = _cli({**env, "MFC_PROFILE": "aws"}, "config", "show")
    assert shown.returncode == 0, out


def test_doctor_passes_on_the_deployed_profile(aws):
    _, env, config, _ = aws
    assert read_profile(str(config), "aws"), "needs the configure test's profile"
    proc, out = _cli(env, "doctor", "--profile", "aws")
    assert proc.returncode == 0, out
    for name in ("credentials", "region", "stack", "bucket", "queue batch_queue", "queue batch_gpu_queue",
                 "role batch_job_role", "role sfn_role", "role events_role", "role Batch service (mfc-cpu)",
                 "role Batch instances (mfc-cpu)", "permissions sfn_role", "permissions batch_job_role"):
        assert _doctor_line(out, name).startswith("ok"), out
    assert "FAIL" not in out and "checks passed" in out
    assert "(mfc-gpu)" not in out  # both compute environments share the stack's two Batch roles


def _broken(config, name: str, **changes) -> str:
    values = {**read_profile(str(config), "aws"), **changes}
    write_profile(str(config), name, values)
    return name


def test_doctor_names_a_missing_queue(aws):
    _, env, config, _ = aws
    proc, out = _cli(env, "doctor", "--profile", _broken(config, "noqueue", batch_queue="mfc-nope"))
    assert proc.returncode == 1, out
    assert _doctor_line(out, "queue batch_queue").startswith("FAIL  queue batch_queue: mfc-nope does not exist ->")
    assert _doctor_line(out, "queue batch_gpu_queue").startswith("ok")


def test_doctor_names_a_disabled_queue(aws):
    server, env, _, _ = aws
    batch = server.client("batch")
    batch.update_job_queue(jobQueue="mfc-gpu", state="DISABLED")
    try:
        proc, out = _cli(env, "doctor", "--profile", "aws")
    finally:
        batch.update_job_queue(jobQueue="mfc-gpu", state="ENABLED")
    assert proc.returncode == 1, out
    line = _doctor_line(out, "queue batch_gpu_queue")
    assert line.startswith("FAIL") and "mfc-gpu is DISABLED/VALID" in line and "--state ENABLED" in line


def test_doctor_names_a_role_that_does_not_trust_batch(aws):
    server, env, _, _ = aws
    iam = server.client("iam")
    role = next(r for r in iam.list_roles()["Roles"] if "BatchServiceRole" in r["RoleName"])
    wrong = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam.update_assume_role_policy(RoleName=role["RoleName"], PolicyDocument=json.dumps(wrong))
    try:
        proc, out = _cli(env, "doctor", "--profile", "aws")
    finally:
        iam.update_assume_role_policy(RoleName=role["RoleName"],
                                      PolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]))
    assert proc.returncode == 1, out
    line = _doctor_line(out, "role Batch service (mfc-cpu)")
    assert line.startswith("FAIL") and "does not trust batch.amazonaws.com" in line


def test_doctor_names_a_missing_image_and_finds_a_pushed_one(aws):
    server, env, config, _ = aws
    registry = read_profile(str(config), "aws")["image_registry"]
    proc, out = _cli(env, "doctor", "--profile", _broken(config, "noimage", image=f"{registry}/mfc-base:gone"))
    assert proc.returncode == 1, out
    line = _doctor_line(out, "image image")
    assert line.startswith(f"FAIL  image image: {registry}/mfc-base:gone is not in the registry ->"), line
    server.client("ecr").put_image(repositoryName="mfc/mfc-base", imageTag="there",
                                   imageManifest=json.dumps({"schemaVersion": 2, "layers": [],
                                                              "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}))
    proc, out = _cli(env, "doctor", "--profile", _broken(config, "image", image=f"{registry}/mfc-base:there"))
    assert _doctor_line(out, "image image").startswith("ok"), out


def test_doctor_names_a_role_without_the_permissions_of_compiled_flows(aws):
    server, env, config, _ = aws
    iam = server.client("iam")
    iam.create_role(RoleName="bare-sfn", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="bare-sfn", PolicyName="only-batch", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "batch:*", "Resource": "*"}]}))
    arn = iam.get_role(RoleName="bare-sfn")["Role"]["Arn"]
    proc, out = _cli(env, "doctor", "--profile", _broken(config, "baresfn", sfn_role=arn))
    assert proc.returncode == 1, out
    line = _doctor_line(out, "permissions sfn_role")
    assert line.startswith("FAIL") and "events:PutTargets" in line and "states:StartExecution" in line
    assert "batch:SubmitJob" not in line


def test_a_stack_that_is_not_mfcs_is_refused(aws):
    server, env, _, _ = aws
    foreign = {"Resources": {"Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "payroll-data"}}}}
    server.client("cloudformation").create_stack(StackName="payroll", TemplateBody=json.dumps(foreign))
    for args in (("deploy", "aws", "--stack", "payroll"), ("deploy", "aws", "--stack", "payroll", "--delete"),
                 ("configure", "--from-stack", "payroll")):
        proc, out = _cli(env, *args)
        assert proc.returncode == 2, out
        assert out.startswith("error: stack payroll exists but was not deployed by mfc") and out.count("\n") == 1
    assert server.client("s3").head_bucket(Bucket="payroll-data")


def test_a_failed_resource_is_one_line_with_its_reason(aws):
    _, env, _, _ = aws
    proc, out = _cli(env, "deploy", "aws", "--stack", "broken", "-p", "Namespace=broken", "-p", "CreateJobLogGroup=false",
                     "-p", "CpuInstanceTypes=m9.nonexistent")
    assert proc.returncode == 2, out
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, out
    assert "Instance type m9.nonexistent does not exist" in proc.stderr
    # moto fails the call and keeps what it made; the line says so and how to remove it
    assert "stack broken is left CREATE_IN_PROGRESS" in proc.stderr and "--delete" in proc.stderr


def test_bad_parameters_and_names_are_one_line(aws):
    _, env, _, _ = aws
    for args, words in ((("-p", "Nope=1"), "the template has no parameter Nope"),
                        (("-p", "CpuMaxVcpus"), "expected KEY=VALUE"),
                        (("--stack", "no_underscores"), "stack name 'no_underscores' is not valid"),
                        (("--force",), "--force goes with --delete")):
        proc, out = _cli(env, "deploy", "aws", *args)
        assert proc.returncode == 2, out
        assert words in out and out.count("\n") == 1, out


def test_delete_refuses_while_the_bucket_holds_runs_and_a_deleted_stack_is_named(aws):
    server, env, config, _ = aws
    # In moto's default VPC (CreateVpc=false): moto cannot delete the VPC endpoints of its own VPC.
    ec2 = server.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    proc, out = _cli(env, "deploy", "aws", "--stack", "gone", "-p", "Namespace=gone", "-p", "CreateJobLogGroup=false",
                     "-p", "CreateVpc=false", "-p", f"VpcId={vpc}", "-p", f"SubnetIds={','.join(subnets[:2])}")
    assert proc.returncode == 0, out
    proc, out = _cli(env, "configure", "--from-stack", "gone", "--profile", "gone")
    assert proc.returncode == 0, out
    bucket = "gone-123456789012-us-east-1"
    server.client("s3").put_object(Bucket=bucket, Key="data/TrainFlow/1700000000/_run.json", Body=b"{}")
    proc, out = _cli(env, "deploy", "aws", "--stack", "gone", "--delete")
    assert proc.returncode == 2, out
    assert f"bucket {bucket} of stack gone holds 1 objects (runs of TrainFlow)" in out and "--force" in out
    proc, out = _cli(env, "deploy", "aws", "--stack", "gone", "--delete", "--force")
    assert proc.returncode == 0, out
    assert "stack gone: deleted" in out
    proc, out = _cli(env, "doctor", "--profile", "gone")
    assert proc.returncode == 1, out
    line = _doctor_line(out, "stack")
    assert line.startswith("FAIL  stack: gone does not exist (deleted?)") and "mfc deploy aws --stack gone" in line
    proc, out = _cli(env, "configure", "--from-stack", "gone")
    assert proc.returncode == 2 and "no stack gone" in out and out.count("\n") == 1, out
    proc, out = _cli(env, "deploy", "aws", "--stack", "gone", "--delete")
    assert proc.returncode == 2 and "no stack gone to delete" in out, out


def test_missing_permissions_to_deploy_name_the_action(tmp_path):
    # moto enforces IAM after its first requests: those create a user allowed to read stacks only.
    with MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"}) as server:
        iam = server.client("iam")
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                "cloudformation:DescribeStacks", "cloudformation:GetTemplateSummary"]}]}))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        env = {**server.env(), "MFC_AWS_ENDPOINT_URL": server.endpoint, "MFC_CONFIG": str(tmp_path / "c.toml"),
               "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        proc, out = _cli(env, "deploy", "aws")
    assert proc.returncode == 2, out
    assert proc.stderr.startswith("error: not allowed to cloudformation:CreateStack") and \
        proc.stderr.count("\n") == 1, out
