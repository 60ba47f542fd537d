"""@secrets against a real moto server over HTTP: the secret's keys are the step's environment
variables, never artifacts or logs; a missing secret fails the run with one line naming it."""

from __future__ import annotations

import json
import uuid

import boto3
from compat_support import flow_file, mfc_run

from mfc import Run, metadata, namespace

PASSWORD = "s3cr3t-" + uuid.uuid4().hex


def _create(moto, name: str, value: str) -> None:
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto.endpoint,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    sm.create_secret(Name=name, SecretString=value)


def test_secret_keys_become_step_environment(moto, root):
    name = f"db-creds-{uuid.uuid4().hex[:8]}"
    _create(moto, name, json.dumps({"DB_USER": "alice", "DB-PASSWORD": PASSWORD}))
    proc, run_id = mfc_run(root, flow_file("secrets_flow"), MFC_AWS_ENDPOINT_URL=moto.endpoint,
                           AWS_DEFAULT_REGION="us-east-1", COMPAT_SECRET_ID=name)
    assert PASSWORD not in proc.stdout + proc.stderr
    metadata(f"local@{root}")
    namespace(None)
    run = Run(f"SecretsFlow/{run_id}")
    start = run["start"].task
    assert start["user"].data == "alice"
    assert start["has_password"].data is True  # 'DB-PASSWORD' is sanitised to DB_PASSWORD
    assert run["end"].task["user_in_end"].data is None  # only the decorated step sees it
    stored = "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())
    assert PASSWORD not in stored


def test_missing_secret_fails_with_one_line(moto, root):
    proc, _ = mfc_run(root, flow_file("secrets_flow"), expect=1, MFC_AWS_ENDPOINT_URL=moto.endpoint,
                      AWS_DEFAULT_REGION="us-east-1", COMPAT_SECRET_ID="no-such-secret")
    lines = [line for line in proc.stderr.splitlines() if "no-such-secret" in line]
    assert any("@secrets: secret 'no-such-secret' does not exist in AWS Secrets Manager (region us-east-1)" in line
               for line in lines), proc.stderr
    assert "Traceback" not in proc.stderr


def test_not_json_secret_names_the_secret(moto, root):
    name = f"plain-{uuid.uuid4().hex[:8]}"
    _create(moto, name, "just text")
    proc, _ = mfc_run(root, flow_file("secrets_flow"), expect=1, MFC_AWS_ENDPOINT_URL=moto.endpoint,
                      AWS_DEFAULT_REGION="us-east-1", COMPAT_SECRET_ID=name)
    assert f"@secrets: secret {name!r} is not valid JSON" in proc.stderr
    assert "just text" not in proc.stderr
