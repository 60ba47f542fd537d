"""Step Functions runs through the service, against executions moto really runs: the status is
the execution's (and, once it ended, recorded as the run's final status), a deployment is
triggered with the input ``mfc sfn trigger`` sends, a running run is terminated."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from service_support import client, db_url, running_service, unique  # noqa: F401

from mfc.config import Config

ROLE = "arn:aws:iam::123456789012:role/mfc-sfn"
WAIT = {"StartAt": "Train", "States": {"Train": {"Type": "Wait", "Seconds": 300, "End": True}}}
FAIL = {"StartAt": "Train", "States": {"Train": {"Type": "Fail", "Error": "mfc.StepFailed", "Cause": "for good"}}}


@pytest.fixture(scope="module")
def aws(moto):
    request = urllib.request.Request(f"{moto.endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()
    patch = pytest.MonkeyPatch()
    for key, value in moto.env().items():
        if key.startswith("AWS_"):
            patch.setenv(key, value)
    yield moto, Config({"aws_endpoint_url": moto.endpoint}, env={k: v for k, v in moto.env().items()
                                                                 if not k.startswith("MFC_")})
    patch.undo()


def machine(moto, definition: dict) -> str:
    sfn = moto.client("stepfunctions")
    return sfn.create_state_machine(name=unique("M"), definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]


def test_status_is_the_executions_and_an_ended_one_is_recorded(aws, db_url, tmp_path):  # noqa: F811
    moto, config = aws
    sfn = moto.client("stepfunctions")
    failing = sfn.start_execution(stateMachineArn=machine(moto, FAIL), name="e1")["executionArn"]
    waiting = sfn.start_execution(stateMachineArn=machine(moto, WAIT), name="e2")["executionArn"]
    flow = unique()
    with running_service(db_url, tmp_path, config=config) as service, client(service) as api:
        for run_id, arn in (("sfn-e1", failing), ("sfn-e2", waiting)):
            api.post(f"/api/v1/flows/{flow}/runs", json={"run_id": run_id, "info": {
                "driver": {"kind": "sfn", "execution": arn, "state_machine": "M"}}})
        deadline = time.monotonic() + 20
        while sfn.describe_execution(executionArn=failing)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        failed = api.get(f"/api/v1/flows/{flow}/runs/sfn-e1").json()
        assert failed["status"] == "failed" and "execution ended FAILED" in failed["result"]["error"]
        assert api.get(f"/api/v1/flows/{flow}/runs/sfn-e1/facts").json()["status"]["status"] == "failed"
        assert api.get(f"/api/v1/flows/{flow}/runs/sfn-e2").json()["status"] == "running"
        stopped = api.post(f"/api/v1/flows/{flow}/runs/sfn-e2/terminate")
        assert stopped.status_code == 200, stopped.text
        assert sfn.describe_execution(executionArn=waiting)["status"] == "ABORTED"
        assert api.get(f"/api/v1/flows/{flow}/runs/sfn-e2").json()["status"] == "failed"
        assert api.post(f"/api/v1/flows/{flow}/runs/sfn-e2/terminate").status_code == 409
        assert api.post(f"/api/v1/flows/{flow}/runs/sfn-e1/terminate").status_code == 409


def test_trigger_starts_an_execution_with_the_cli_input(aws, db_url, tmp_path):  # noqa: F811
    moto, config = aws
    arn = machine(moto, WAIT)
    flow = unique()
    with running_service(db_url, tmp_path, config=config) as service, client(service) as api:
        api.put(f"/api/v1/deployments/{flow}", json={"flow": flow, "state_machine_arn": arn,
                                                      "parameters": {"alpha": 0.5, "flag": False}})
        started = api.post(f"/api/v1/deployments/{flow}/trigger", json={"parameters": {"alpha": 2, "flag": True}})
        assert started.status_code == 200, started.text
        found = started.json()
        assert found["run_id"].startswith("sfn-") and found["execution_arn"].endswith(found["run_id"][4:])
        described = moto.client("stepfunctions").describe_execution(executionArn=found["execution_arn"])
        assert json.loads(described["input"]) == {"parameters": {"alpha": "2", "flag": "true"}}
        unknown = api.post(f"/api/v1/deployments/{flow}/trigger", json={"parameters": {"beta": 1}})
        assert unknown.status_code == 400 and "beta" in unknown.json()["detail"]
        assert api.post("/api/v1/deployments/nosuch/trigger", json={}).status_code == 404
