"""Flow images on the real Docker engine: tag from inputs, labels, no docker call when unchanged,
code changes never rebuild, lock changes do, and failures are one clear error.

Tests marked docker need an engine and mfc-base (`make docker-up image`); they skip without them
(fail under CI=true or MFC_REQUIRE_DOCKER=1). Each build takes a few seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docker_helpers import base_image_tag, project_version, require_docker, require_image, run_in_image

from mfc.builder import engine as engine_module
from mfc.builder.dockerfile import TEMPLATE, file_digest
from mfc.builder.image import LABEL_PREFIX, build_flow_image, default_base, ensure_flow_image
from mfc.builder.progress import QuietReporter, follow_build
from mfc.exceptions import MfcError

FLOW = """\
from mfc import FlowSpec, step


class ImageTestFlow(FlowSpec):
    @step
    def start(self):
        self.x = {value}
        self.next(self.end)

    @step
    def end(self):
        pass
"""
REPOSITORY = "mfc-flow-imagetestflow"
CLI = "import sys, mfc.cli as c; from mfc.cli.image import image, lock; " \
      "c.cli.add_command(lock); c.cli.add_command(image); c.main(sys.argv[1:])"


def remove_test_images(client) -> None:
    for image in client.images.list(name=REPOSITORY):
        for tag in image.tags:
            client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def engine():
    client = require_docker()
    require_image(client, base_image_tag())
    remove_test_images(client)  # a first build here must really build
    yield client
    remove_test_images(client)
    client.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine) -> Path:
    """A flow project needing `six`, with a private mfc cache (state file and locks)."""
    monkeypatch.setenv("MFC_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'imagetest'\nversion = '0.1'\n")
    (root / "requirements.txt").write_text("six\n")
    (root / "flow.py").write_text(FLOW.format(value=1))
    return root / "flow.py"


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
def test_build_labels_reuse_and_code_changes(project: Path, engine, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    first = build_flow_image(str(project), quiet=True)
    first_build_s = time.monotonic() - started
    assert first.status == "built"
    assert first.image.startswith(f"{REPOSITORY}:") and len(first.image.split(":")[1]) == 16
    assert first.image.split(":")[1] == first.inputs.digest[:16]

    labels = engine.images.get(first.image).labels
    assert labels[LABEL_PREFIX + "lock"] == first.inputs.lock.id
    assert labels[LABEL_PREFIX + "base"] == default_base() == base_image_tag()
    assert labels[LABEL_PREFIX + "base-id"] == engine.images.get(base_image_tag()).id
    assert labels[LABEL_PREFIX + "mfc-version"] == project_version()
    assert labels[LABEL_PREFIX + "digest"] == first.inputs.digest
    assert labels["io.mfc.lock"].startswith("six==")
    out = run_in_image(engine, first.image, ["python", "-c", "import six, mfc; print(six.__version__)"])
    assert f"six=={out.strip()}" == labels["io.mfc.lock"]
    assert run_in_image(engine, first.image, ["id", "-u"]).strip() == "1000"

    # Unchanged: answered from the state file, without docker.
    no_docker(monkeypatch)
    started = time.monotonic()
    again = build_flow_image(str(project), quiet=True)
    unchanged_s = time.monotonic() - started
    assert (again.status, again.image) == ("cached", first.image)
    assert unchanged_s < 1.0, unchanged_s
    # Code is not baked in: editing the flow's code keeps the tag, still without docker.
    project.write_text(FLOW.format(value=2))
    assert ensure_flow_image(str(project), quiet=True) == first.image
    monkeypatch.undo()
    monkeypatch.setenv("MFC_CACHE_DIR", str(project.parent.parent / "cache"))

    # --refresh asks the engine again and finds the same image.
    refreshed = build_flow_image(str(project), quiet=True, refresh=True)
    assert (refreshed.status, refreshed.image) == ("present", first.image)
    print(f"\nfirst build {first_build_s:.1f}s, unchanged {unchanged_s * 1000:.0f}ms")


@pytest.mark.docker
def test_lock_change_gives_a_new_tag_and_explain_names_it(project: Path, engine) -> None:
    first = build_flow_image(str(project), quiet=True)
    (project.parent / "requirements.txt").write_text("six\nidna\n")
    second = build_flow_image(str(project), quiet=True)
    assert second.status == "built" and second.image != first.image
    assert second.image.startswith(f"{REPOSITORY}:")
    changes = second.changes()
    assert len(changes) == 1 and changes[0].startswith(
        f"lock changed ({first.inputs.lock.id[:12]} → {second.inputs.lock.id[:12]})")
    explained = "\n".join(second.explain())
    assert f"rebuild: lock changed ({first.inputs.lock.id[:12]} → " in explained
    assert "idna==" in engine.images.get(second.image).labels["io.mfc.lock"]

    # Back to the first lock: its image is known, no rebuild; explain says up to date.
    (project.parent / "requirements.txt").write_text("six\n")
    back = build_flow_image(str(project), quiet=True)
    assert (back.status, back.image) == ("cached", first.image)
    assert back.explain()[-1].startswith("up to date")


@pytest.mark.docker
def test_cli_build_streams_steps_then_explains(project: Path, engine) -> None:
    env = {**os.environ}
    built = subprocess.run([sys.executable, "-c", CLI, "image", "build", str(project)], capture_output=True,
                           text=True, env=env, timeout=300)
    assert built.returncode == 0, built.stderr
    image = built.stdout.strip().splitlines()[-1]
    assert image.startswith(f"{REPOSITORY}:")
    if "is up to date" not in built.stderr:  # a build ran: plain progress lines (stderr is not a TTY)
        assert "RUN sh /tmp/mfc-deps/install.sh" in built.stderr and "[6/8]" in built.stderr
    started = time.monotonic()
    again = subprocess.run([sys.executable, "-c", CLI, "image", "build", str(project), "--explain"],
                           capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[-1] == image and lines[-2].startswith("up to date")
    assert any(line.split()[:1] == ["lock"] and line.endswith("unchanged") for line in lines)
    assert elapsed < 3.0, elapsed  # a whole process: interpreter, imports, no docker


@pytest.mark.docker
def test_failing_build_names_the_step_and_shows_its_output(project: Path, engine) -> None:
    broken = TEMPLATE.replace("RUN sh /tmp/mfc-deps/install.sh",
                              "RUN echo 'installing broken-marker' >&2 && exit 7")
    assert broken != TEMPLATE
    with pytest.raises(MfcError) as info:
        build_flow_image(str(project), quiet=True, template=broken)
    message = str(info.value)
    first_line = message.splitlines()[0]
    assert first_line.startswith(f"image build of {REPOSITORY}:")
    assert "failed at step 6/8 `RUN echo 'installing broken-marker' >&2 && exit 7`" in first_line
    assert "returned a non-zero code: 7" in first_line
    assert "    installing broken-marker" in message.splitlines()[1:]


@pytest.mark.docker
def test_python_mismatch_is_caught_before_building(project: Path, engine) -> None:
    project.write_text(FLOW.format(value=1).replace(
        "class ImageTestFlow", "from mfc import pypi_base\n\n\n@pypi_base(python='3.10')\nclass ImageTestFlow"))
    with pytest.raises(MfcError, match=r"asks for Python 3.10 but the image has Python 3.11"):
        build_flow_image(str(project), quiet=True)


@pytest.mark.docker
def test_flow_without_dependencies_builds_an_image(project: Path, engine) -> None:
    (project.parent / "requirements.txt").unlink()
    result = build_flow_image(str(project), quiet=True)
    assert result.inputs.lock.pins == ()
    assert engine.images.get(result.image).labels["io.mfc.lock"] == ""
    assert "mfc" in run_in_image(engine, result.image, ["mfc", "--version"])


@pytest.mark.docker
def test_gpu_without_gpu_base_image_says_how_to_build_it(project: Path, engine) -> None:
    import docker.errors

    try:
        engine.images.get(default_base(gpu=True))
        pytest.skip(f"{default_base(gpu=True)} exists here")
    except docker.errors.ImageNotFound:
        pass
    with pytest.raises(MfcError, match=r"make image-gpu GPU_BASE_IMAGE="):
        ensure_flow_image(str(project), gpu=True, quiet=True)


@pytest.mark.docker
def test_missing_base_image_is_a_clear_error(project: Path, engine) -> None:
    with pytest.raises(MfcError, match=r"base image mfc-no-such-base:0 is not on the Docker engine"):
        build_flow_image(str(project), quiet=True, base="mfc-no-such-base:0")


@pytest.mark.docker
def test_ca_bundle_is_trusted_in_the_image(project: Path, engine, tmp_path: Path) -> None:
    cert = tmp_path / "proxy-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=mfc test proxy CA", "-keyout", str(tmp_path / "key.pem"), "-out", str(cert)],
                   check=True, capture_output=True)
    plain = build_flow_image(str(project), quiet=True)
    with_ca = build_flow_image(str(project), quiet=True, ca_bundle=cert)
    assert with_ca.image != plain.image
    assert engine.images.get(with_ca.image).labels[LABEL_PREFIX + "ca"] == file_digest(cert)
    body = cert.read_text().splitlines()[1]  # a line of the certificate's base64
    bundle = run_in_image(engine, with_ca.image, ["cat", "/etc/ssl/certs/ca-certificates.crt"])
    assert body in bundle
    assert body not in run_in_image(engine, plain.image, ["cat", "/etc/ssl/certs/ca-certificates.crt"])


def test_build_stream_parsing_without_an_engine() -> None:
    """The engine's chunks do not follow line boundaries; stderr comes colored; an error ends the build."""
    chunks = [
        {"stream": "Step 1/3 : FROM base"}, {"stream": "\n"}, {"stream": " ---> abc\n"},
        {"stream": "Step 2/3 : COPY deps/ /tmp/mfc-deps/\n ---> Using cache\n ---> def\n"},
        {"stream": "Step 3/3 : RUN sh install.sh\n ---> Running in 123\n"},
        {"stream": "partial "}, {"stream": "line\n\u001b[91mERROR: no wheel\n\u001b[0m"},
        {"error": "The command '/bin/sh -c sh install.sh' returned a non-zero code: 1",
         "errorDetail": {"code": 1, "message": "The command '/bin/sh -c sh install.sh' returned a non-zero code: 1"}},
        {"stream": "never read\n"},
    ]
    with pytest.raises(MfcError) as info:
        follow_build(iter(chunks), QuietReporter(), "image build of x:1")
    lines = str(info.value).splitlines()
    assert lines[0] == ("image build of x:1 failed at step 3/3 `RUN sh install.sh`: "
                        "The command '/bin/sh -c sh install.sh' returned a non-zero code: 1")
    assert lines[2:] == ["    partial line", "    ERROR: no wheel"]
    ok = follow_build(iter(chunks[:4] + [{"aux": {"ID": "sha256:feed"}}]), QuietReporter(), "build")
    assert ok.image_id == "sha256:feed"
    assert [(s.number, s.cached) for s in ok.steps] == [(1, False), (2, True)]


@pytest.mark.slow
def test_sdist_only_dependency_gets_a_wheel_built_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pin with no wheel on the index is built with `pip wheel` on the host (pure Python: portable)."""
    import tarfile

    from mfc.builder.dockerfile import fetch_wheels
    from mfc.packager.lockfile import EnvLock

    links = tmp_path / "links"
    links.mkdir()
    src = tmp_path / "src"
    (src / "mfcsdisttest").mkdir(parents=True)
    (src / "mfcsdisttest" / "__init__.py").write_text("VALUE = 42\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=61"]\n'
                                        'build-backend = "setuptools.build_meta"\n'
                                        '[project]\nname = "mfcsdisttest"\nversion = "0.1"\n')
    (src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: mfcsdisttest\nVersion: 0.1\n")
    with tarfile.open(links / "mfcsdisttest-0.1.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="mfcsdisttest-0.1")
    monkeypatch.setenv("PIP_FIND_LINKS", f"{links} {os.environ.get('PIP_FIND_LINKS', '')}".strip())
    dest = tmp_path / "wheels"
    dest.mkdir()
    messages: list[str] = []
    fetch_wheels(EnvLock.create("3.11", {"mfcsdisttest": "0.1", "six": "1.17.0"}), dest, messages.append)
    names = sorted(p.name for p in dest.glob("*.whl"))
    assert names[0] == "mfcsdisttest-0.1-py3-none-any.whl" and names[1].startswith("six-1.17.0-")
    assert messages == ["  no wheel of mfcsdisttest==0.1 for Python 3.11 on the index: building one here"]
