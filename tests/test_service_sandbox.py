"""The metadata service with the cloud backends, for real: a flow deployed to Step Functions in the
sandbox (moto running Batch jobs as containers) with ``metadata = "service"``: the deployment is
recorded, and the run, started by ``mfc sfn trigger``, registers its tasks from inside the Batch
containers."""

from __future__ import annotations

import shutil
import time

import pytest
from service_support import running_service
from support import FLOWS, describe, mfc

from mfc.stores.service_client import ServiceClient

pytestmark = pytest.mark.docker


def test_a_step_functions_run_records_in_the_service_from_its_batch_jobs(sandbox, images, tmp_path):
    with running_service("sqlite:///" + str(tmp_path / "service.db"), tmp_path) as service:
        env = {"MFC_CONFIG": str(sandbox.config), "MFC_PROFILE": "sandbox", "MFC_METADATA": "service",
               "MFC_SERVICE_URL": service.url, "MFC_SERVICE_TOKEN": service.token}
        flow = tmp_path / "project" / "linear.py"
        flow.parent.mkdir()
        shutil.copy(FLOWS / "linear.py", flow)
        created = mfc(None, "sfn", "create", str(flow), "--image", images["cpu"], env=env, cwd=flow.parent, timeout=300)
        assert created.returncode == 0, describe(created)
        client = ServiceClient(service.url, service.token, retries=1)
        [deployment] = client.get("/api/v1/deployments")["deployments"]
        assert deployment["flow"] == "LinearFlow" and deployment["state_machine_arn"].endswith(":LinearFlow")
        id_file = tmp_path / "run-id"
        started = time.monotonic()
        run = mfc(None, "sfn", "trigger", str(flow), "--wait", "--run-id-file", str(id_file), env=env,
                  cwd=flow.parent, timeout=300)
        assert run.returncode == 0, describe(run)
        run_id = id_file.read_text().strip()
        found = client.get(f"/api/v1/flows/LinearFlow/runs/{run_id}")
        assert found["status"] == "succeeded" and found["driver"]["kind"] == "sfn", found
        assert found["trigger"] == {"kind": "manual"}
        steps = {s["name"]: s for s in client.get(f"/api/v1/flows/LinearFlow/runs/{run_id}/steps")["steps"]}
        assert set(steps) >= {"start", "end"}
        assert all(s["counts"].get("ok") == s["tasks"] for s in steps.values()), steps
        attempt = client.get(f"/api/v1/flows/LinearFlow/runs/{run_id}/steps/end/tasks/"
                             f"{client.get(f'/api/v1/flows/LinearFlow/runs/{run_id}/steps/end/tasks')['tasks'][0]['task_id']}"
                             "/attempts/0")
        assert attempt["final"] and attempt["record"]["ending"] == "ok"
        assert attempt["started_at"] >= started - 60
        deleted = mfc(None, "sfn", "delete", str(flow), env=env, cwd=flow.parent, timeout=120)
        assert deleted.returncode == 0, describe(deleted)
        assert client.get("/api/v1/deployments")["deployments"] == []


def test_tasks_in_local_containers_register_in_the_service(tmp_path, root):
    from docker_helpers import base_image_tag, require_docker, require_image
    from support import flow_path, run_flow

    engine = require_docker()
    require_image(engine, base_image_tag())
    engine.close()
    with running_service("sqlite:///" + str(tmp_path / "service.db"), tmp_path) as service:
        env = {"MFC_METADATA": "service", "MFC_SERVICE_URL": service.url, "MFC_SERVICE_TOKEN": service.token}
        _, run_id = run_flow(root, flow_path("linear"), extra=("--local-docker", "--image", base_image_tag()),
                             env=env, timeout=300)
        client = ServiceClient(service.url, service.token, retries=1)
        assert client.get(f"/api/v1/flows/LinearFlow/runs/{run_id}")["status"] == "succeeded"
        steps = client.get(f"/api/v1/flows/LinearFlow/runs/{run_id}/steps")["steps"]
        assert steps and all(s["counts"].get("ok") == s["tasks"] for s in steps), steps
        [task] = client.get(f"/api/v1/flows/LinearFlow/runs/{run_id}/steps/start/tasks")["tasks"]
        attempt = client.get(f"/api/v1/flows/LinearFlow/runs/{run_id}/steps/start/tasks/{task['task_id']}/attempts/0")
        assert attempt["started_at"] and attempt["record"]["ending"] == "ok"
