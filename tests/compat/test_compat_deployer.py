"""``Deployer``: a Metaflow-style script deploys a flow to Step Functions in the sandbox, triggers a
run, follows it to its end, reads its result through the client, finds the deployment again by
its name (``DeployedFlow.from_deployment``) and deletes the state machine through it."""

from __future__ import annotations

import boto3
import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FLOW = '''
from metaflow import FlowSpec, Parameter, step

class DeployerFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        self.x = int(self.alpha) * 2
        self.next(self.end)

    @step
    def end(self):
        self.y = self.x + 1
'''


def test_deployer_creates_triggers_and_deletes(sandbox, images, tmp_path, monkeypatch) -> None:
    from mfc import DeployedFlow, Deployer
    from mfc.exceptions import MfcError

    env = {"MFC_CONFIG": str(sandbox.config), "MFC_PROFILE": "sandbox"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MFC_DATASTORE_ROOT", raising=False)
    flow = tmp_path / "deployer_flow.py"
    flow.write_text(FLOW.replace("from metaflow import", "from mfc import"))

    deployed = Deployer(str(flow), show_output=False, env=env, cwd=str(tmp_path)).step_functions(
        image=images["cpu"]).create()
    assert deployed.name == "DeployerFlow"
    triggered = deployed.trigger(alpha=3)
    triggered.wait_for_run(timeout=400)
    assert triggered.status == "successful", triggered.stderr
    assert triggered.run.id.startswith("sfn-") and triggered.run.data.y == 7

    found = DeployedFlow.from_deployment("DeployerFlow")  # no flow file given: the deployed code package
    assert (found.name, found.flow_name) == ("DeployerFlow", "DeployerFlow")
    assert found._runner.flow_file != str(flow) and open(found._runner.flow_file).read() == flow.read_text()
    found.delete()
    with pytest.raises(MfcError, match="no state machine 'DeployerFlow'"):
        DeployedFlow.from_deployment("DeployerFlow")
    with pytest.raises(ValueError, match="No deployer 'argo-workflows'"):
        DeployedFlow.from_deployment("DeployerFlow", impl="argo-workflows")
    client = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{sandbox.port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    names = [m["name"] for m in client.list_state_machines()["stateMachines"]]
    assert "DeployerFlow" not in names, names
