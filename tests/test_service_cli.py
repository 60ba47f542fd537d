"""``mfc service`` as users run it, in a subprocess: tokens made, listed and revoked; the
service started and answering; one clear line (exit 2) for a port in use, a bad database URL,
a database that cannot be reached and a schema from a newer mfc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from service_support import REPO, free_port
from sqlalchemy import text
from support import clean_env

from mfc.service.db import open_database


def mfc(*args: str, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = clean_env(None, {"PYTHONPATH": REPO})
    return subprocess.run([sys.executable, "-c", "import sys; from mfc.cli import main; main(sys.argv[1:])", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_token_create_list_revoke(tmp_path):
    url = f"sqlite:///{tmp_path}/svc.db"
    made = mfc("service", "token", "create", "--label", "ci bot", "--db", url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("mfc_") and len(token) > 40
    reader = mfc("service", "token", "create", "--read-only", "--expires-in", "1", "--db", url)
    listed = mfc("service", "token", "list", "--db", url)
    assert listed.returncode == 0
    token_id = token.split("_")[1]
    assert token_id in listed.stdout and "ci bot" in listed.stdout and "read-only" in listed.stdout
    assert token not in listed.stdout and reader.stdout.strip() not in listed.stdout
    revoked = mfc("service", "token", "revoke", token_id, "--db", url)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert "revoked" in mfc("service", "token", "list", "--db", url).stdout
    assert "no token 'nosuch'" in one_line(mfc("service", "token", "revoke", "nosuch", "--db", url))


def test_database_from_the_setting_and_the_default(tmp_path):
    env_url = f"sqlite:///{tmp_path}/from-env.db"
    proc = subprocess.run([sys.executable, "-c", "import sys; from mfc.cli import main; main(sys.argv[1:])",
                           "service", "token", "create"], capture_output=True, text=True, timeout=60,
                          env=clean_env(None, {"PYTHONPATH": REPO, "MFC_SERVICE_DB": env_url}))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "from-env.db").exists()
    (tmp_path / "project" / ".mfc").mkdir(parents=True)
    assert mfc("service", "token", "create", cwd=tmp_path / "project").returncode == 0
    assert (tmp_path / "project" / ".mfc" / "service.db").exists()
    (tmp_path / "bare").mkdir()  # no datastore yet: made where `mfc run` would make it
    assert mfc("service", "token", "create", cwd=tmp_path / "bare").returncode == 0
    assert (tmp_path / "bare" / ".mfc" / "service.db").exists()


def test_service_starts_answers_and_says_how_to_make_a_token(tmp_path):
    url = f"sqlite:///{tmp_path}/svc.db"
    port = free_port()
    command = [sys.executable, "-c", "import sys; from mfc.cli import main; main(sys.argv[1:])",
               "service", "--db", url, "--port", str(port), "--datastore-root", str(tmp_path)]
    proc = subprocess.Popen(command, env=clean_env(None, {"PYTHONPATH": REPO}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/flows").status_code == 401
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"mfc service on http://127.0.0.1:{port} (database: sqlite:///{tmp_path}/svc.db)" in out
    assert "no API tokens yet" in out and "mfc service token create" in out


def test_port_in_use_is_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        line = one_line(mfc("service", "--db", f"sqlite:///{tmp_path}/svc.db", "--port", str(port)))
    assert f"port {port}" in line and "in use" in line


def test_bad_database_urls_are_one_line(tmp_path):
    port = str(free_port())
    assert "unknown database kind 'mysql'" in one_line(mfc("service", "--db", "mysql://u:p@h/d", "--port", port))
    line = one_line(mfc("service", "--db", "postgresql://u:hunter2@127.0.0.1:1/d", "--port", port))
    assert "127.0.0.1:1/d" in line and "hunter2" not in line
    assert "does not parse" in one_line(mfc("service", "token", "list", "--db", "::not a url::"))


def test_newer_schema_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path}/svc.db"
    db = open_database(url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    db.engine.dispose()
    line = one_line(mfc("service", "--db", url, "--port", str(free_port())))
    assert "schema revision f00d" in line and "upgrade mfc" in line
    assert "f00d" in one_line(mfc("service", "token", "create", "--db", url))
    assert os.path.exists(f"{tmp_path}/svc.db")


def test_a_bootstrap_secret_from_the_environment_is_a_writing_token(tmp_path):
    """A service deployed by the template gets its token's secret as MFC_SERVICE_BOOTSTRAP_TOKEN;
    ``mfc configure --from-stack`` writes ``mfc_bootstrap_<secret>``; a rotated secret replaces it."""
    from mfc.service.auth import bootstrap_token

    db = f"sqlite:///{tmp_path / 'boot.db'}"
    command = [sys.executable, "-c", "import sys; from mfc.cli import main; main(sys.argv[1:])", "service", "--db", db]
    weak = subprocess.run([*command, "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                          env=clean_env(None, {"PYTHONPATH": REPO, "MFC_SERVICE_BOOTSTRAP_TOKEN": "short"}))
    assert weak.returncode == 2 and "MFC_SERVICE_BOOTSTRAP_TOKEN must be at least 32" in weak.stderr, weak.stderr
    for secret, old in (("a" * 40, None), ("b" * 40, "a" * 40)):
        port = free_port()
        proc = subprocess.Popen([*command, "--port", str(port)],
                                env=clean_env(None, {"PYTHONPATH": REPO, "MFC_SERVICE_BOOTSTRAP_TOKEN": secret}),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/health", timeout=1)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    time.sleep(0.2)
            who = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {bootstrap_token(secret)}"})
            assert who.status_code == 200 and who.json() == {"token_id": "bootstrap", "read_only": False}
            if old is not None:
                gone = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {bootstrap_token(old)}"})
                assert gone.status_code == 401
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_token_commands_take_the_database_given_to_mfc_service(tmp_path):
    db = f"sqlite:///{tmp_path / 'given.db'}"
    made = mfc("service", "--db", db, "token", "create", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "given.db").exists() and not (tmp_path / ".mfc").exists()
    listed = mfc("service", "token", "list", "--db", db, cwd=tmp_path)
    assert listed.returncode == 0 and "read-write" in listed.stdout, listed.stderr
