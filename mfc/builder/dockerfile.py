"""The flow image's Dockerfile and its build context.

A flow image is an mfc base image (system, then mfc's dependencies, then mfc) plus one layer: the
flow's locked dependencies, installed from wheels fetched on the host, so the build itself needs
no network, no registry and no certificate setup (it runs with no network at all). Flow code is never copied in: tasks fetch their
code package at start. The template is the same for every flow and is itself one of the image's
inputs; the build appends one ``LABEL`` line recording the inputs (:func:`render_dockerfile`).

Build context, written by :func:`prepare_context`::

    Dockerfile             the template plus one LABEL line with the image's inputs
    deps/install.sh        :data:`INSTALL_SCRIPT`
    deps/requirements.txt  the lock's pins (empty: nothing to install)
    deps/wheels/           one wheel per pin
    deps/ca/               extra CA certificates to trust (--ca-bundle), usually none
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from mfc.exceptions import MfcError
from mfc.packager.lockfile import EnvLock

TEMPLATE = """\
# mfc flow image: an mfc base image plus the flow's locked dependencies (`mfc lock`).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG MFC_PYTHON_VERSION
USER 0:0
COPY deps/ /tmp/mfc-deps/
RUN sh /tmp/mfc-deps/install.sh
USER 1000:1000
"""

INSTALL_SCRIPT = """\
#!/bin/sh
# Runs in the flow image build: checks the base's Python, trusts extra CAs, installs the locked wheels.
set -eu
deps=/tmp/mfc-deps
got="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$got" != "${MFC_PYTHON_VERSION:-}" ]; then
    echo "mfc: the base image has Python $got but the lock is for Python ${MFC_PYTHON_VERSION:-?};" \\
         "lock for $got (@pypi_base(python=\\"$got\\")) or use another base image" >&2
    exit 1
fi
n=0
for cert in "$deps"/ca/*.crt; do
    [ -f "$cert" ] || continue
    n=$((n + 1))
    mkdir -p /usr/local/share/ca-certificates
    cp "$cert" "/usr/local/share/ca-certificates/mfc-flow-$n.crt"
done
if [ "$n" -gt 0 ]; then update-ca-certificates >/dev/null; fi
if [ -s "$deps/requirements.txt" ]; then
    pip install --no-index --no-deps --no-cache-dir --disable-pip-version-check --quiet \\
        --find-links "$deps/wheels" -r "$deps/requirements.txt"
    if ! pip check --disable-pip-version-check >"$deps/check.txt" 2>&1; then
        cat "$deps/check.txt" >&2
        echo "mfc: the locked dependencies conflict with the base image's packages (see above)" >&2
        exit 1
    fi
fi
rm -rf "$deps"
"""


def template_digest(template: str = TEMPLATE) -> str:
    """sha256 of the Dockerfile template and the install script (an input of the image tag)."""
    return hashlib.sha256(f"{template}\0{INSTALL_SCRIPT}".encode()).hexdigest()


def render_dockerfile(template: str, labels: dict[str, str]) -> str:
    """The template with one ``LABEL`` instruction for ``labels`` (values on one line, quoted)."""
    def quote(text: str) -> str:
        text = " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return f'"{text}"'

    pairs = " ".join(f"{quote(k)}={quote(v)}" for k, v in sorted(labels.items()))
    return f"{template.rstrip()}\nLABEL {pairs}\n" if labels else template


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare_context(context: Path, lock: EnvLock, labels: dict[str, str] | None = None,
                    template: str = TEMPLATE, ca_bundle: Path | None = None,
                    log: Callable[[str], None] | None = None) -> None:
    """Fill ``context`` (an empty directory) for building ``lock`` onto a base image."""
    (context / "Dockerfile").write_text(render_dockerfile(template, labels or {}), encoding="utf-8")
    deps = context / "deps"
    deps.mkdir()
    (deps / "install.sh").write_text(INSTALL_SCRIPT, encoding="utf-8")
    (deps / "requirements.txt").write_text(lock.requirements, encoding="utf-8")
    ca = deps / "ca"
    ca.mkdir()
    (ca / "README").write_text("extra CA certificates trusted in the image\n", encoding="utf-8")
    if ca_bundle is not None:
        shutil.copyfile(ca_bundle, ca / "extra-ca.crt")
    wheels = deps / "wheels"
    wheels.mkdir()
    (wheels / "README").write_text("wheels of the locked dependencies\n", encoding="utf-8")
    if lock.pins:
        fetch_wheels(lock, wheels, log)


def _pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise MfcError(f"cannot run pip ({sys.executable} -m pip): {exc}") from None


def fetch_wheels(lock: EnvLock, dest: Path, log: Callable[[str], None] | None = None) -> None:
    """One wheel per pin of ``lock`` in ``dest``, for the lock's Python on manylinux.

    Pins with no suitable wheel on the index (sdist-only packages) are built here with ``pip wheel``;
    that gives a portable wheel for pure-Python packages, and one for this host's Python otherwise,
    which is refused when it cannot install in the image.
    """
    from mfc.packager.deps import target_flags

    todo = [f"{name}=={version}" for name, version in lock.pins]
    while todo:
        result = _pip(["download", "--no-deps", "--quiet", "--dest", str(dest), *target_flags(lock.python), *todo])
        if result.returncode == 0:
            return
        missing = re.search(r"No matching distribution found for (\S+)", result.stderr)
        if not missing or missing.group(1) not in todo:
            raise MfcError(f"cannot download the wheels of the lock for Python {lock.python}: "
                           f"{_last_error(result.stderr)}")
        pin = missing.group(1)
        if log:
            log(f"  no wheel of {pin} for Python {lock.python} on the index: building one here")
        _build_wheel(pin, dest, lock.python)
        todo.remove(pin)


def _build_wheel(pin: str, dest: Path, python: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mfc-wheel-") as tmp:
        result = _pip(["wheel", "--no-deps", "--quiet", "--wheel-dir", tmp, pin])
        built = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not built:
            raise MfcError(f"dependency {pin} has no wheel for Python {python} and building one failed: "
                           f"{_last_error(result.stderr)}")
        wheel = built[0]
        tags = wheel.name[:-4].split("-")[-3:]
        host = f"cp{sys.version_info[0]}{sys.version_info[1]}"
        portable = tags[1] in ("none", "abi3") and tags[2] == "any"
        if not portable and (python.replace(".", "") != host[2:] or not sys.platform.startswith("linux")):
            raise MfcError(f"dependency {pin} has no wheel for Python {python} and the one built here "
                           f"({wheel.name}) is for this host only",
                           hint="pin a version with wheels for the image's Python, or use a base image "
                                "with this host's Python")
        shutil.move(str(wheel), dest / wheel.name)


def _last_error(stderr: str) -> str:
    errors = [line.removeprefix("ERROR: ").strip() for line in stderr.splitlines() if line.startswith("ERROR:")]
    lines = errors or [line.strip() for line in stderr.splitlines() if line.strip()] or ["pip failed"]
    return lines[-1]

