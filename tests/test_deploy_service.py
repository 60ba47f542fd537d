"""`mfc doctor`'s service line (GET /health, then GET /api/v1/whoami with the profile's token) and
`mfc configure --from-stack` reading the service token from Secrets Manager.

The metadata service is not part of this branch yet, so the doctor is checked against a real HTTP
server (uvicorn on a free port) that answers the two routes as the service's API does; moto's
CloudFormation cannot create AWS::SecretsManager::Secret, so the secret is made directly and a
small mfc-marked stack outputs its ARN as the template's ServiceToken output does.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest
from moto_server import MotoServer, free_port
from support import mfc

from mfc.sandbox.profile import read_profile, write_profile

TOKEN = "s3cr3t-token"


@pytest.fixture(scope="module")
def service():
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def whoami(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"detail": "invalid token"}, status_code=401)
        return JSONResponse({"token_id": "tok-1", "read_only": False})

    app = Starlette(routes=[Route("/health", health), Route("/api/v1/whoami", whoami)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _doctor_service_line(env, config, **values) -> tuple[int, str]:
    write_profile(str(config), "svc", values)
    proc = mfc(None, "doctor", "--profile", "svc", env={**env, "MFC_CONFIG": str(config)}, timeout=120)
    line = next(x for x in proc.stdout.splitlines() if x[6:].startswith("service:"))
    return proc.returncode, line


def test_doctor_checks_the_service_is_healthy_and_takes_the_token(service, tmp_path):
    config = tmp_path / "config.toml"
    # No AWS here: the credentials line fails, the service line is still checked.
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "MFC_AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    code, line = _doctor_service_line(env, config, service_url=service, service_token=TOKEN)
    assert line == f"ok    service: {service} healthy, token tok-1 accepted"
    code, line = _doctor_service_line(env, config, service_url=service, service_token="wrong")
    assert code == 1 and line.startswith(f"FAIL  service: {service} refused the token") and "->" in line
    code, line = _doctor_service_line(env, config, service_url=service)
    assert code == 1 and "service_token is not set" in line
    gone = f"http://127.0.0.1:{free_port()}"
    code, line = _doctor_service_line(env, config, service_url=gone, service_token=TOKEN)
    assert code == 1 and line.startswith(f"FAIL  service: {gone} is not healthy")


def test_configure_reads_the_service_token_from_its_secret(tmp_path):
    with MotoServer() as server:
        arn = server.client("secretsmanager").create_secret(Name="mfc/service-token", SecretString=TOKEN)["ARN"]
        outputs = {"DatastoreRoot": "s3://b/data", "AwsRegion": "us-east-1", "BatchQueue": "mfc-cpu",
                   "BatchJobRole": "arn:aws:iam::123456789012:role/job", "SfnRole": "arn:aws:iam::123456789012:role/sfn",
                   "EventsRole": "arn:aws:iam::123456789012:role/ev", "ServiceUrl": "http://service.internal",
                   "ServiceToken": arn}
        template = {"Description": "mfc: a stack with the service's outputs",
                    "Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/t"}}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
        server.client("cloudformation").create_stack(StackName="svc", TemplateBody=json.dumps(template))
        config = tmp_path / "config.toml"
        env = {**server.env(), "MFC_AWS_ENDPOINT_URL": server.endpoint, "MFC_CONFIG": str(config)}
        proc = mfc(None, "configure", "--from-stack", "svc", env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout and "service_token = ***" in proc.stdout
    profile = read_profile(str(config), "default")
    assert profile["service_token"] == f"mfc_bootstrap_{TOKEN}" and profile["metadata"] == "service"
    assert profile["service_url"] == "http://service.internal"
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
