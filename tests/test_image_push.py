"""`mfc image push`: flow images pushed to a registry as ``<registry>/mfc-flow-<name>:<tag>``.

Without docker: registry parsing, the push stream's bookkeeping and error lines, the ECR calls
against a moto server over HTTP (moto's ECR keeps no layers, so pushes go to a real registry), and
manifest checks against a real registry (Debian's ``docker-registry`` run here on a free port).
Marked docker: real pushes of a flow image to that registry, the second one without docker, a
registry that lost the image, the CLI, an unreachable registry and one that wants a login.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
from docker_helpers import base_image_tag, docker_required, require_docker, require_image
from moto_server import MotoServer

from mfc.builder import ecr
from mfc.builder import engine as engine_module
from mfc.builder.image import ImageState, build_flow_image
from mfc.builder.push import ensure_pushed, parse_registry, push_flow_image, remote_status, resolve_registry
from mfc.builder.push_progress import PushLog, PushReporter, push_error
from mfc.exceptions import MfcError
from mfc.sandbox import registry as sandbox_registry

FLOW = """\
from mfc import FlowSpec, step


class PushTestFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""
REPOSITORY = "mfc-flow-pushtestflow"
CLI = "import sys, mfc.cli as c; c.main(sys.argv[1:])"
ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"  # moto's account


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config file or MFC_* settings leak into these tests."""
    for var in [v for v in os.environ if v.startswith("MFC_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "no-config.toml"))


# --- registry names (nothing running) ------------------------------------------------------------


def test_registry_forms():
    plain = parse_registry("127.0.0.1:5056")
    assert (plain.host, plain.namespace, plain.ecr, plain.local) == ("127.0.0.1:5056", "", None, True)
    assert plain.repository(REPOSITORY) == REPOSITORY and plain.base_url == "http://127.0.0.1:5056"
    spaced = parse_registry("Registry.Example.com/team/ml/")
    assert (str(spaced), spaced.repository("x"), spaced.local) == ("registry.example.com/team/ml", "team/ml/x", False)
    assert spaced.base_url == "https://registry.example.com"
    assert parse_registry("localhost:5000").local and parse_registry("[::1]:5000").local
    found = parse_registry(f"{ECR_HOST}/mfc").ecr
    assert found is not None and (found.account, found.region) == ("123456789012", "us-east-1")
    gov = parse_registry("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").ecr
    assert gov is not None and gov.region == "us-gov-west-1"
    assert parse_registry("ghcr.io/someone").ecr is None


@pytest.mark.parametrize("value,expected", [
    ("http://127.0.0.1:5000", "without http://"),
    ("myuser", "for Docker Hub give docker.io/myuser"),
    ("host.example:99999", "is not a registry host[:port]"),
    ("host.example/Team", "namespace part 'Team' is not a valid repository name"),
    ("host.example/a//b", "namespace part '' is not a valid repository name"),
    ("", "nothing is not a registry host"),
])
def test_bad_registry_is_one_line(value: str, expected: str):
    with pytest.raises(MfcError) as info:
        parse_registry(value)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(f"--registry {value}:")


def test_registry_comes_from_the_flag_or_the_setting(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(MfcError, match=r"no image registry: pass --registry .*mfc sandbox up"):
        resolve_registry(None)
    monkeypatch.setenv("MFC_IMAGE_REGISTRY", "127.0.0.1:5999/ns")
    assert str(resolve_registry(None)) == "127.0.0.1:5999/ns"
    assert str(resolve_registry("other.example:443")) == "other.example:443"  # the flag wins
    monkeypatch.setenv("MFC_IMAGE_REGISTRY", "https://x.example")
    with pytest.raises(MfcError, match=r"^image_registry \(from env MFC_IMAGE_REGISTRY\) https://x.example: "):
        resolve_registry(None)


# --- the push stream (chunks as Docker 20.10 sends them) -----------------------------------------


def _chunks(layer_states: dict[str, str]) -> list[dict]:
    chunks: list[dict] = [{"status": "The push refers to repository [127.0.0.1:5000/x]"}]
    chunks += [{"status": "Preparing", "progressDetail": {}, "id": lid} for lid in layer_states]
    for lid, state in layer_states.items():
        if state == "Pushed":
            chunks += [{"status": "Pushing", "progressDetail": {"current": c, "total": 3000}, "id": lid}
                       for c in (512, 2048, 3000)]
        chunks.append({"status": state, "progressDetail": {}, "id": lid})
    chunks.append({"status": "t1: digest: sha256:" + "ab" * 32 + " size: 2198"})
    chunks.append({"progressDetail": {}, "aux": {"Tag": "t1", "Digest": "sha256:" + "ab" * 32, "Size": 2198}})
    return chunks


def test_push_log_counts_layers_and_bytes():
    out = io.StringIO()
    log = PushLog(PushReporter(out))
    for chunk in _chunks({"aaa": "Pushed", "bbb": "Layer already exists", "ccc": "Mounted from other/repo",
                          "ddd": "Pushed"}):
        log.feed(chunk)
    assert (log.pushed, log.existing, log.done, log.bytes_sent) == (2, 2, 4, 6000)
    assert log.digest == "sha256:" + "ab" * 32 and log.error == ""
    assert out.getvalue().splitlines() == ["  aaa: pushed (3.0 kB)", "  bbb: already in the registry",
                                           "  ccc: mounted from other/repo", "  ddd: pushed (3.0 kB)"]
    log.feed({"errorDetail": {"message": "blob upload\n unknown"}, "error": "blob upload\n unknown"})
    assert log.error == "blob upload unknown"


@pytest.mark.parametrize("message,local,ecr,expected", [
    ('Get "http://127.0.0.1:5098/v2/": dial tcp 127.0.0.1:5098: connect: connection refused', True, False,
     "does not answer: Get .* connection refused \\(start the sandbox's registry with `mfc sandbox up`"),
    ("dial tcp: lookup reg.example: no such host", False, False, "check the registry address and the network"),
    ("no basic auth credentials", False, False, "refused the push of .*: no basic auth credentials "
                                                r"\(log in with `docker login h:1`\)"),
    ("denied: User is not authorized", False, True, "may push to this ECR repository"),
    ("http: server gave HTTP response to HTTPS client", False, False, "insecure-registries"),
    ("blob upload unknown", False, False, r"^push of h:1/r:t failed: blob upload unknown$"),
])
def test_push_errors_say_what_to_do(message: str, local: bool, ecr: bool, expected: str):
    text = str(push_error("h:1/r:t", "h:1", message, local, ecr))
    assert "\n" not in text
    assert re.search(expected, text), text


# --- ECR calls against a moto server -------------------------------------------------------------


@pytest.fixture
def ecr_api(moto):
    moto.reset()
    return moto.client("ecr")


def test_repository_is_made_with_scan_on_push_and_lifecycle_policy(ecr_api):
    assert ecr.ensure_repository(ecr_api, f"mfc/{REPOSITORY}", keep=7) is True
    repo = ecr_api.describe_repositories(repositoryNames=[f"mfc/{REPOSITORY}"])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["repositoryUri"] == f"{ECR_HOST}/mfc/{REPOSITORY}"
    policy = json.loads(ecr_api.get_lifecycle_policy(repositoryName=f"mfc/{REPOSITORY}")["lifecyclePolicyText"])
    (rule,) = policy["rules"]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 7}
    assert rule["action"] == {"type": "expire"}
    # Idempotent: nothing made or changed the second time.
    assert ecr.ensure_repository(ecr_api, f"mfc/{REPOSITORY}", keep=7) is False
    assert len(ecr_api.describe_repositories()["repositories"]) == 1
    assert json.loads(ecr.lifecycle_policy(50))["rules"][0]["selection"]["countNumber"] == 50
    with pytest.raises(MfcError, match="keep at least 1 image"):
        ecr.lifecycle_policy(0)


def test_existing_repository_keeps_its_policy_or_gets_ours(ecr_api):
    ecr_api.create_repository(repositoryName="theirs")
    theirs = ecr.lifecycle_policy(3)
    ecr_api.put_lifecycle_policy(repositoryName="theirs", lifecyclePolicyText=theirs)
    assert ecr.ensure_repository(ecr_api, "theirs") is False
    assert ecr_api.get_lifecycle_policy(repositoryName="theirs")["lifecyclePolicyText"] == theirs
    ecr_api.create_repository(repositoryName="bare")
    assert ecr.ensure_repository(ecr_api, "bare", keep=9, account="123456789012") is False
    text = ecr_api.get_lifecycle_policy(repositoryName="bare")["lifecyclePolicyText"]
    assert json.loads(text)["rules"][0]["selection"]["countNumber"] == 9


def test_login_credentials_come_from_the_token(ecr_api):
    creds = ecr.login_credentials(ecr_api)
    assert creds.username == "AWS" and creds.password and creds.registry == f"https://{ECR_HOST}"
    import base64

    token = base64.b64encode(b"AWS:pass:with:colons").decode()
    assert ecr.decode_token(token, "https://h") == ecr.Credentials("AWS", "pass:with:colons", "https://h")
    with pytest.raises(MfcError, match="not base64"):
        ecr.decode_token("%%%", "https://h")
    with pytest.raises(MfcError, match="without user:password"):
        ecr.decode_token(base64.b64encode(b"nocolon").decode(), "https://h")


def test_already_pushed_asks_describe_images(ecr_api):
    assert ecr.already_pushed(ecr_api, "nowhere", "t1") is None  # no repository
    ecr.ensure_repository(ecr_api, "rr")
    assert ecr.already_pushed(ecr_api, "rr", "t1") is None  # no such tag
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                           "digest": "sha256:" + "0" * 64}, "layers": []}
    ecr_api.put_image(repositoryName="rr", imageManifest=json.dumps(manifest), imageTag="t1")
    digest = ecr.already_pushed(ecr_api, "rr", "t1", account="123456789012")
    assert digest is not None and digest.startswith("sha256:")
    assert ecr.already_pushed(ecr_api, "rr", "t2") is None


def test_ecr_failures_are_one_line(moto):
    closed = moto.client("ecr", endpoint=f"http://127.0.0.1:{free_port()}",
                         retries={"mode": "standard", "total_max_attempts": 1})
    with pytest.raises(MfcError) as info:
        ecr.already_pushed(closed, "rr", "t1")
    assert str(info.value).startswith("ECR describe_images rr:t1 failed: cannot reach http://127.0.0.1:")
    with MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as strict:
        with pytest.raises(MfcError) as info:
            ecr.ensure_repository(strict.client("ecr"), "rr")
    text = str(info.value)
    assert text.startswith("ECR create_repository rr failed: ") and "\n" not in text
    assert "InvalidClientTokenId: The security token included in the request is invalid." in text
    assert "check your AWS credentials and their ECR permissions" in text


def test_ecr_client_takes_the_registry_region(monkeypatch: pytest.MonkeyPatch, moto):
    monkeypatch.setenv("MFC_AWS_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("MFC_AWS_REGION", "us-east-1")
    client = ecr.ecr_client("eu-west-1")
    assert client.meta.region_name == "eu-west-1" and client.meta.endpoint_url == moto.endpoint
    client.describe_repositories()  # answered by moto, with the sandbox's dummy credentials if none are set


# --- a real registry -----------------------------------------------------------------------------


class LocalRegistry:
    """Debian's docker-registry on a free port, storage in a temporary directory."""

    def __init__(self, root: Path, htpasswd: str | None = None) -> None:
        binary = sandbox_registry.find_binary()
        if binary is None:
            reason = f"docker-registry is not installed: {sandbox_registry.INSTALL_HINT}"
            if docker_required():
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        self.port = free_port()
        config = sandbox_registry.write_config(str(root), self.port)
        if htpasswd:
            (root / "htpasswd").write_text(htpasswd)
            with open(config, "a") as fh:
                fh.write(f"auth:\n  htpasswd:\n    realm: test\n    path: {root / 'htpasswd'}\n")
        self.log = open(root / "registry.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen([binary, "serve", config], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not sandbox_registry.healthy(self.port, timeout=0.5) and time.monotonic() < deadline:
            if htpasswd and self._answers():
                break
            time.sleep(0.1)
        self.address = f"127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=0.5)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()

    def delete_manifest(self, repository: str, digest: str) -> None:
        request = urllib.request.Request(f"http://{self.address}/v2/{repository}/manifests/{digest}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = LocalRegistry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


def test_manifest_check_absent_and_unreachable(registry: LocalRegistry):
    target = parse_registry(registry.address)
    assert remote_status(target, "nothing/here", "t1") == ("absent", "")
    assert remote_status(parse_registry(f"127.0.0.1:{free_port()}"), "x", "t1") == ("unreachable",
                                                                                     "connection refused")


# --- real pushes (docker) ------------------------------------------------------------------------


def _remove_images(client) -> None:
    """This module's image, under its local name and every registry name a test gave it."""
    for image in client.images.list():
        for tag in image.tags:
            if tag.rpartition(":")[0].rsplit("/", 1)[-1] == REPOSITORY:
                client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def engine(registry: LocalRegistry):
    client = require_docker()
    require_image(client, base_image_tag())
    _remove_images(client)
    yield client
    _remove_images(client)
    client.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("push-project")
    (root / "pyproject.toml").write_text("[project]\nname = 'pushtest'\nversion = '0.1'\n")
    (root / "flow.py").write_text(FLOW)
    return root / "flow.py"


@pytest.fixture
def cache(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One mfc cache (state file, locks) for the module's docker tests: the flow is built once."""
    path = Path(tmp_path_factory.getbasetemp()) / "push-cache"
    monkeypatch.setenv("MFC_CACHE_DIR", str(path))
    return path


def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any use of docker fail: the SDK cannot be imported, no client made, no process started."""
    monkeypatch.setitem(sys.modules, "docker", None)
    monkeypatch.setitem(sys.modules, "docker.errors", None)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("docker (or a subprocess) was called")

    monkeypatch.setattr(engine_module, "docker_client", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.mark.docker
def test_push_then_nothing_to_do_without_docker(project: Path, registry: LocalRegistry, engine, cache: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    out = io.StringIO()
    target = f"{registry.address}/mfc-test"
    started = time.monotonic()
    first = push_flow_image(str(project), registry=target, stream=out)
    first_s = time.monotonic() - started
    tag = first.image.image.split(":")[1]
    assert first.image.image == f"{REPOSITORY}:{tag}" and len(tag) == 16
    assert (first.status, first.ref) == ("pushed", f"{target}/{REPOSITORY}:{tag}")
    assert f"mfc-test/{REPOSITORY}" in sandbox_registry.catalog(registry.port)
    assert sandbox_registry.tags(registry.port, f"mfc-test/{REPOSITORY}") == [tag]
    assert remote_status(parse_registry(target), f"mfc-test/{REPOSITORY}", tag) == ("present", first.digest)
    assert first.layers_pushed > 3 and first.bytes_sent > 50_000_000  # the base image's layers went too
    text = out.getvalue()
    assert f"mfc: pushing {first.ref}" in text and f"mfc: pushed {first.ref} in " in text
    assert text.count(": pushed (") == first.layers_pushed

    # Nothing changed: the registry is asked once, docker not at all.
    no_docker(monkeypatch)
    started = time.monotonic()
    assert ensure_pushed(str(project), registry=target, quiet=True) == first.ref
    second_s = time.monotonic() - started
    again = push_flow_image(str(project), registry=target, quiet=True)
    assert (again.status, again.digest) == ("present", first.digest)
    # Without this machine's record of the push the registry's answer is enough.
    state = ImageState(cache / "images.json")
    state.data.pop("pushed")
    assert push_flow_image(str(project), registry=target, quiet=True, state=state).status == "present"
    assert second_s < 1.0, second_s
    print(f"\nfirst push {first_s:.1f}s ({first.layers_pushed} layers, {first.bytes_sent / 1e6:.0f} MB), "
          f"second {second_s * 1000:.0f}ms")


@pytest.mark.docker
def test_image_gone_from_the_registry_is_pushed_again(project: Path, registry: LocalRegistry, engine, cache: Path):
    target = f"{registry.address}/again"
    first = push_flow_image(str(project), registry=target, quiet=True)
    assert first.status == "pushed"
    registry.delete_manifest(f"again/{REPOSITORY}", first.digest)
    assert remote_status(parse_registry(target), f"again/{REPOSITORY}", first.ref.rsplit(":", 1)[1])[0] == "absent"
    second = push_flow_image(str(project), registry=target, quiet=True)
    assert (second.status, second.ref, second.digest) == ("pushed", first.ref, first.digest)
    # The blobs stayed (and the first push mounted them from mfc-test/, where the first test put them).
    assert (second.layers_pushed, second.bytes_sent) == (0, 0)
    assert second.layers_existing == first.layers_pushed + first.layers_existing > 3


@pytest.mark.docker
def test_image_removed_from_the_engine_is_rebuilt_then_pushed(project: Path, registry: LocalRegistry, engine,
                                                              cache: Path):
    built = build_flow_image(str(project), quiet=True)
    for tag in engine.images.get(built.image).tags:
        engine.images.remove(tag, force=True)
    result = push_flow_image(str(project), registry=f"{registry.address}/rebuilt", quiet=True)
    assert result.status == "pushed" and result.image.status == "built"
    assert result.ref.endswith(built.image)  # same inputs, same tag
    assert engine.images.get(built.image).id == result.image.image_id


@pytest.mark.docker
def test_cli_push_streams_layers_then_says_up_to_date(project: Path, registry: LocalRegistry, engine, cache: Path):
    env = {**os.environ, "MFC_IMAGE_REGISTRY": f"{registry.address}/cli"}
    pushed = subprocess.run([sys.executable, "-c", CLI, "image", "push", str(project)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    ref = pushed.stdout.strip()
    assert ref.startswith(f"{registry.address}/cli/{REPOSITORY}:") and "\n" not in ref
    # stderr is not a TTY: plain lines; the layers are in the registry already, under another name.
    assert f"mfc: pushing {ref}" in pushed.stderr and "mounted from" in pushed.stderr
    started = time.monotonic()
    again = subprocess.run([sys.executable, "-c", CLI, "image", "push", str(project)], capture_output=True,
                           text=True, env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == ref
    assert f"mfc: {ref} is up to date (the registry has it;" in again.stderr
    assert elapsed < 3.0, elapsed  # a whole process: interpreter, imports, one HEAD request


@pytest.mark.docker
def test_unreachable_registry_says_how_to_start_the_sandbox(project: Path, engine, cache: Path):
    port = free_port()
    with pytest.raises(MfcError) as info:
        ensure_pushed(str(project), registry=f"127.0.0.1:{port}", quiet=True)
    text = str(info.value)
    assert text.startswith(f"cannot push 127.0.0.1:{port}/{REPOSITORY}:")
    assert f"the registry 127.0.0.1:{port} does not answer (connection refused)" in text
    assert "mfc sandbox up" in text and "\n" not in text
    cli = subprocess.run([sys.executable, "-c", CLI, "image", "push", str(project), "--registry",
                          f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60,
                         env={**os.environ})
    assert cli.returncode == 2 and cli.stdout == ""
    assert "Traceback" not in cli.stderr and "mfc sandbox up" in cli.stderr


@pytest.mark.docker
def test_registry_wanting_a_login_refuses_in_one_line(project: Path, engine, cache: Path, tmp_path: Path):
    with warnings.catch_warnings():  # deprecated since 3.11, gone in 3.13
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt", reason="needs the crypt module for a bcrypt htpasswd")
    line = "user:" + crypt.crypt("secret", crypt.mksalt(crypt.METHOD_BLOWFISH)) + "\n"
    if not line.startswith("user:$2"):
        pytest.skip("this libc's crypt has no bcrypt")
    locked = LocalRegistry(tmp_path, htpasswd=line)
    try:
        assert remote_status(parse_registry(locked.address), REPOSITORY, "t")[0] == "unknown"
        with pytest.raises(MfcError) as info:
            ensure_pushed(str(project), registry=locked.address, quiet=True)
    finally:
        locked.stop()
    text = str(info.value)
    assert text.startswith(f"the registry {locked.address} refused the push of {locked.address}/{REPOSITORY}:")
    assert "no basic auth credentials" in text and f"docker login {locked.address}" in text and "\n" not in text


# --- ECR wiring: moto's ECR API, this engine (moto keeps no layers, so nothing is pushed) ---------


@pytest.fixture
def moto_ecr(moto, monkeypatch: pytest.MonkeyPatch):
    """mfc's AWS calls go to the moto server; its ECR starts empty."""
    moto.reset()
    monkeypatch.setenv("MFC_AWS_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("MFC_AWS_REGION", "eu-west-1")  # the registry's region (in its host) wins
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    return moto.client("ecr")


@pytest.mark.docker
def test_ecr_tag_found_by_describe_images_is_not_pushed(project: Path, engine, cache: Path, moto_ecr,
                                                        monkeypatch: pytest.MonkeyPatch):
    tag = build_flow_image(str(project), quiet=True).image.split(":")[1]
    moto_ecr.create_repository(repositoryName=f"mfc/{REPOSITORY}")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                           "digest": "sha256:" + "1" * 64}, "layers": []}
    digest = moto_ecr.put_image(repositoryName=f"mfc/{REPOSITORY}", imageManifest=json.dumps(manifest),
                                imageTag=tag)["image"]["imageId"]["imageDigest"]
    no_docker(monkeypatch)
    result = push_flow_image(str(project), registry=f"{ECR_HOST}/mfc", quiet=True)
    assert (result.status, result.digest) == ("present", digest)
    assert result.ref == f"{ECR_HOST}/mfc/{REPOSITORY}:{tag}"


@pytest.mark.docker
def test_ecr_push_makes_the_repository_then_logs_in(project: Path, engine, cache: Path, moto_ecr):
    with pytest.raises(MfcError) as info:
        push_flow_image(str(project), registry=f"{ECR_HOST}/team", quiet=True, keep_images=5)
    text = str(info.value)
    # The engine cannot reach a registry moto made up: the login (before any layer) is what fails.
    assert text.startswith(f"docker login to {ECR_HOST} failed: ") and "\n" not in text
    repo = moto_ecr.describe_repositories(repositoryNames=[f"team/{REPOSITORY}"])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    policy = json.loads(moto_ecr.get_lifecycle_policy(repositoryName=f"team/{REPOSITORY}")["lifecyclePolicyText"])
    assert policy["rules"][0]["selection"]["countNumber"] == 5
