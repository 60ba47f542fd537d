"""The CloudFormation template (cfn-lint, outputs named after settings, the roles' policies) and
the pure parts of `mfc deploy aws` (parameters, outputs, events, failures, refused permissions)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mfc.config import SETTINGS
from mfc.deploy import pure
from mfc.deploy.iam_checks import JOB_ACTIONS, SFN_ACTIONS, missing_actions, trusted_services
from mfc.deploy.stack import TEMPLATE
from mfc.exceptions import MfcError
from mfc.sfn.lint import policy_actions


@pytest.fixture(scope="module")
def template():
    from cfnlint.decode import decode_str

    parsed, problems = decode_str(TEMPLATE.read_text())
    assert not problems, problems
    return parsed


def _actions(template, role: str) -> list[str]:
    return [a for policy in template["Resources"][role]["Properties"]["Policies"]
            for a in policy_actions(policy["PolicyDocument"])]


def test_template_is_cfn_lint_clean():
    lint = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(lint), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_output_is_named_after_the_setting_it_fills(template):
    outputs = template["Outputs"]
    assert {pure.setting_for_output(key) for key in outputs} == {
        "datastore_root", "aws_region", "batch_queue", "batch_gpu_queue", "batch_job_role", "sfn_role",
        "events_role", "image_registry", "service_url", "service_token"}
    assert all(pure.output_for_setting(pure.setting_for_output(key)) == key for key in outputs)
    assert all(pure.setting_for_output(key) in SETTINGS for key in outputs)
    assert pure.setting_for_output("Bucket") is None


def test_roles_allow_what_compiled_flows_and_tasks_use_and_trust_their_services(template):
    assert missing_actions(SFN_ACTIONS, _actions(template, "StepFunctionsRole")) == []
    assert missing_actions(JOB_ACTIONS, _actions(template, "JobRole")) == []
    assert missing_actions(["states:StartExecution"], _actions(template, "EventsRole")) == []
    trusts = {name: trusted_services(template["Resources"][name]["Properties"]["AssumeRolePolicyDocument"])
              for name in ("JobRole", "StepFunctionsRole", "EventsRole", "BatchServiceRole", "InstanceRole")}
    assert trusts == {"JobRole": {"ecs-tasks.amazonaws.com"}, "StepFunctionsRole": {"states.amazonaws.com"},
                      "EventsRole": {"events.amazonaws.com", "scheduler.amazonaws.com"},
                      "BatchServiceRole": {"batch.amazonaws.com"}, "InstanceRole": {"ec2.amazonaws.com"}}
    sync_rule = [s for s in template["Resources"]["StepFunctionsRole"]["Properties"]["Policies"][0]
                 ["PolicyDocument"]["Statement"] if s.get("Sid") == "SyncRule"][0]
    assert "StepFunctionsGetEventsForBatchJobsRule" in str(sync_rule["Resource"])


def test_optional_parts_are_conditions_and_compute_scales_to_zero(template):
    resources = template["Resources"]
    assert resources["Vpc"]["Condition"] == "MakeVpc"
    assert resources["Database"]["Condition"] == resources["Service"]["Condition"] == "WithService"
    assert resources["Notebook"]["Condition"] == "WithNotebook"
    for ce in ("CpuComputeEnvironment", "GpuComputeEnvironment"):
        assert resources[ce]["Properties"]["ComputeResources"]["MinvCpus"] == 0
    bucket = resources["Bucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert template["Description"].startswith(pure.DESCRIPTION_MARKER)


def test_parameters_parse_and_bad_ones_are_one_line():
    assert pure.parse_parameters(["CpuMaxVcpus=64", "SubnetIds=a,b"]) == {"CpuMaxVcpus": "64", "SubnetIds": "a,b"}
    for bad, words in ((["CpuMaxVcpus"], "expected KEY=VALUE"), (["A=1", "A=2"], "given twice"),
                       (["Nope=1"], "has no parameter Nope")):
        with pytest.raises(MfcError, match=words):
            pure.parse_parameters(bad, known=["A", "CpuMaxVcpus"])


def test_create_sends_list_defaults_and_update_keeps_previous_values():
    declared = [{"ParameterKey": "CpuMaxVcpus", "ParameterType": "Number", "DefaultValue": "256"},
                {"ParameterKey": "CpuInstanceTypes", "ParameterType": "CommaDelimitedList", "DefaultValue": "optimal"},
                {"ParameterKey": "Namespace", "ParameterType": "String", "DefaultValue": "mfc"}]
    assert pure.stack_parameters(declared, {"Namespace": "x"}) == [
        {"ParameterKey": "CpuInstanceTypes", "ParameterValue": "optimal"},
        {"ParameterKey": "Namespace", "ParameterValue": "x"}]
    assert pure.stack_parameters(declared, {"CpuMaxVcpus": "8"}, updating=["CpuMaxVcpus", "CpuInstanceTypes"]) == [
        {"ParameterKey": "CpuMaxVcpus", "ParameterValue": "8"},
        {"ParameterKey": "CpuInstanceTypes", "UsePreviousValue": True}]


def test_an_unchanged_stack_is_recognised_also_from_moto_list_reprs():
    current = [{"ParameterKey": "Namespace", "ParameterValue": "mfc"},
               {"ParameterKey": "SubnetIds", "ParameterValue": "['subnet-1', 'subnet-2']"}]
    assert pure.parameters_unchanged(current, {"Namespace": "mfc", "SubnetIds": "subnet-1,subnet-2"})
    assert not pure.parameters_unchanged(current, {"SubnetIds": "subnet-1"})
    assert not pure.parameters_unchanged(current, {"CpuMaxVcpus": "8"})


def test_outputs_become_settings_and_stacks_are_recognised():
    outputs = [{"OutputKey": "BatchGpuQueue", "OutputValue": "mfc-gpu"}, {"OutputKey": "Other", "OutputValue": "x"}]
    assert pure.outputs_to_settings(outputs) == {"batch_gpu_queue": "mfc-gpu"}
    assert pure.is_mfc_stack({"Tags": [{"Key": "mfc:stack", "Value": "mfc"}]})
    assert pure.is_mfc_stack({"Description": "mfc: datastore ..."})
    assert not pure.is_mfc_stack({"Description": "the payroll database", "Tags": [{"Key": "team", "Value": "hr"}]})
    with pytest.raises(MfcError, match="not valid"):
        pure.check_stack_name("1-bad_name")


EVENTS = [  # as CloudFormation reports a failed create, newest first
    {"Timestamp": datetime(2026, 1, 1, 10, 0, 9, tzinfo=timezone.utc), "LogicalResourceId": "mfc",
     "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": "ROLLBACK_COMPLETE"},
    {"Timestamp": datetime(2026, 1, 1, 10, 0, 5, tzinfo=timezone.utc), "LogicalResourceId": "Bucket",
     "ResourceType": "AWS::S3::Bucket", "ResourceStatus": "CREATE_FAILED",
     "ResourceStatusReason": "Resource creation cancelled"},
    {"Timestamp": datetime(2026, 1, 1, 10, 0, 4, tzinfo=timezone.utc), "LogicalResourceId": "GpuComputeEnvironment",
     "ResourceType": "AWS::Batch::ComputeEnvironment", "ResourceStatus": "CREATE_FAILED",
     "ResourceStatusReason": "Resource handler returned message: \"Instance type g9.huge\n is not supported\""},
    {"Timestamp": datetime(2026, 1, 1, 10, 0, 1, tzinfo=timezone.utc), "LogicalResourceId": "mfc",
     "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": "CREATE_IN_PROGRESS",
     "ResourceStatusReason": "User Initiated"},
]


def test_a_failed_deployment_names_the_resource_its_reason_and_what_is_left():
    message = pure.failure_message("mfc", "ROLLBACK_COMPLETE", EVENTS)
    assert "resource GpuComputeEnvironment (AWS::Batch::ComputeEnvironment) failed" in message
    assert "Instance type g9.huge is not supported" in message
    assert "nothing it created is left" in message and "--delete" in message
    assert "\n" not in message
    update = pure.failure_message("mfc", "UPDATE_ROLLBACK_COMPLETE", EVENTS)
    assert "previous deployment, which still runs" in update
    assert "half-deployed" in pure.failure_message("mfc", "DELETE_FAILED", [])


def test_events_are_one_line_each():
    assert pure.format_event(EVENTS[2]) == ("10:00:04  GpuComputeEnvironment (AWS::Batch::ComputeEnvironment)  "
                                            "CREATE_FAILED  Resource handler returned message: \"Instance type "
                                            "g9.huge is not supported\"")
    assert pure.format_event(EVENTS[0]) == "10:00:09  mfc (AWS::CloudFormation::Stack)  ROLLBACK_COMPLETE"


def test_a_refused_permission_names_the_action():
    message = ("User: arn:aws:iam::1:user/dev is not authorized to perform: cloudformation:CreateStack on "
               "resource: arn:aws:cloudformation:us-east-1:1:stack/mfc/*")
    assert pure.denied_action("AccessDenied", message, "cloudformation", "CreateStack") == "cloudformation:CreateStack"
    assert pure.denied_action("AccessDeniedException", "denied", "iam", "GetRole") == "iam:GetRole"
    assert pure.denied_action("ValidationError", message, "cloudformation", "CreateStack") is None


def test_change_sets_are_listed():
    described = {"Changes": [
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "CpuComputeEnvironment",
                            "ResourceType": "AWS::Batch::ComputeEnvironment", "Replacement": "True"}},
        {"ResourceChange": {"Action": "Add", "LogicalResourceId": "Bucket", "ResourceType": "AWS::S3::Bucket"}}]}
    assert pure.change_lines("mfc", "UPDATE", described) == [
        "stack mfc: update would make 2 changes:",
        "  Add     Bucket (AWS::S3::Bucket)",
        "  Modify  CpuComputeEnvironment (AWS::Batch::ComputeEnvironment) (replaced)"]
    assert pure.change_lines("mfc", "UPDATE", {"Changes": [], "StatusReason": "no changes"}) == [
        "stack mfc: update would change nothing (no changes)"]
