"""``mfc.aws.client``: one boto3 session per process and credential environment, so a task's
clients are cheap, while a change of credentials is never served from a stale session."""

from __future__ import annotations

import os

from mfc import aws
from mfc.config import Config


def _config(monkeypatch, tmp_path) -> Config:
    (tmp_path / "config.toml").write_text("")
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("MFC_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    return Config()


def test_clients_share_a_session_until_the_credentials_change(monkeypatch, tmp_path):
    config = _config(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "first")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    one, two = aws.client("s3", config), aws.client("batch", config)
    assert one is not two
    first = aws._session(__import__("boto3"))
    assert one._request_signer._credentials.access_key == "first"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "second")
    other = aws.client("s3", config)
    assert other._request_signer._credentials.access_key == "second"
    assert aws._session(__import__("boto3")) is not first


def test_a_forked_child_makes_clients_with_a_fresh_lock(monkeypatch, tmp_path):
    config = _config(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    aws.client("s3", config)
    lock = aws._LOCK
    lock.acquire()  # as if another thread held it when the process forked
    try:
        pid = os.fork()
        if pid == 0:
            try:
                aws.client("s3", config)
                os._exit(0)
            except BaseException:  # noqa: BLE001
                os._exit(1)
        _, status = os.waitpid(pid, 0)
    finally:
        lock.release()
    assert os.waitstatus_to_exitcode(status) == 0
