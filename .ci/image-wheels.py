"""Download the wheels of mfc's runtime dependencies for an image's Python, on the host.

    python .ci/image-wheels.py --python-version 3.11 --out build/image/deps/py3.11

Images install from these wheels with ``pip install --no-index``, so a build needs no
network and no certificate setup inside the container. The host's pip does the
downloading, with the host's index, proxy and CA settings.

``pip download --python-version`` picks wheels for the target Python but evaluates
environment markers for the host's Python, so a dependency that only older Pythons
need (``tomli; python_version < '3.11'``) would be left out. This script evaluates the
markers for the target itself, re-reads every downloaded wheel's ``Requires-Dist``
and asks pip again until the set is closed. The output directory holds the wheels and
``requirements.txt`` (the pins), and is replaced only when the download succeeds.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # a runtime dependency of mfc on 3.10
    import tomli as tomllib

try:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
except ImportError:  # pip always vendors a copy
    from pip._vendor.packaging.markers import Marker  # type: ignore[no-redef]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]

MAX_ROUNDS = 5


def normalize(name: str) -> str:
    """PEP 503 name normalization: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def target_environment(python_version: str, arch: str) -> dict[str, str]:
    """Marker variables of a CPython ``python_version`` on Linux ``arch``."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python_version}.0",
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{python_version}.0",
        "python_version": python_version,
        "sys_platform": "linux",
    }


def applies(req: Requirement, env: dict[str, str], extras: set[str]) -> bool:
    """Whether ``req`` is needed in ``env`` when its parent was asked for with ``extras``."""
    if req.marker is None:
        return True
    marker = Marker(str(req.marker))
    return any(marker.evaluate({**env, "extra": extra}) for extra in extras | {""})


def without_marker(req: Requirement) -> str:
    """``req`` as pip syntax without its environment marker: ``name[extras]specifier``."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def wheel_requirements(wheel: Path) -> tuple[str, str, list[Requirement]]:
    """Name, version and ``Requires-Dist`` entries of a wheel, read from its METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta_name).decode("utf-8")
    headers = text.split("\n\n", 1)[0].splitlines()
    fields = [line.split(":", 1) for line in headers if ":" in line and not line.startswith(" ")]
    name = next(v.strip() for k, v in fields if k == "Name")
    version = next(v.strip() for k, v in fields if k == "Version")
    reqs = [Requirement(v.strip()) for k, v in fields if k == "Requires-Dist"]
    return name, version, reqs


def pip_download(reqs: list[str], dest: Path, python_version: str, arch: str) -> None:
    """Binary-only ``pip download`` of ``reqs`` for CPython ``python_version`` on manylinux ``arch``."""
    abi = "cp" + python_version.replace(".", "")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--abi",
        abi,
        "--dest",
        str(dest),
    ]
    # Debian bookworm has glibc 2.36 and Ubuntu 22.04 has 2.35: any manylinux up to 2.35 runs on both.
    for minor in range(35, 16, -1):
        cmd += ["--platform", f"manylinux_2_{minor}_{arch}"]
    cmd += ["--platform", f"manylinux2014_{arch}", *reqs]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(
            f"image-wheels: pip download failed for Python {python_version} ({arch}):\n"
            f"{result.stderr.strip()}"
        )


def project_requirements(pyproject: Path) -> list[Requirement]:
    """The ``[project] dependencies`` of a pyproject.toml."""
    with pyproject.open("rb") as fh:
        data = tomllib.load(fh)
    return [Requirement(r) for r in data["project"].get("dependencies", [])]


def closed_wheel_set(roots: list[Requirement], python_version: str, arch: str, work: Path) -> Path:
    """Download until every requirement that applies to the target has a wheel; return the dir."""
    env = target_environment(python_version, arch)
    wanted = {normalize(r.name): r for r in roots if applies(r, env, set())}
    for round_no in range(MAX_ROUNDS):
        dest = work / f"round{round_no}"
        # Markers were evaluated for the target above; pip would re-evaluate them for the host.
        pip_download([without_marker(r) for r in wanted.values()], dest, python_version, arch)
        found: dict[str, tuple[str, list[Requirement]]] = {}
        for wheel in sorted(dest.glob("*.whl")):
            name, version, reqs = wheel_requirements(wheel)
            found[normalize(name)] = (version, reqs)
        missing: dict[str, Requirement] = {}
        for parent, (_, reqs) in found.items():
            extras = set(wanted[parent].extras) if parent in wanted else set()
            for req in reqs:
                key = normalize(req.name)
                if not applies(req, env, extras):
                    continue
                # pip chose versions by the host's markers; re-check them against the target's.
                if key in found and req.specifier.contains(found[key][0], prereleases=True):
                    continue
                merged = missing.get(key) or wanted.get(key)
                spec = req.specifier & merged.specifier if merged else req.specifier
                new = Requirement(f"{req.name}{spec}")
                new.extras = req.extras | (merged.extras if merged else set())
                if merged is None or str(new) != str(merged):
                    missing[key] = new
        if not missing:
            return dest
        wanted.update(missing)
    sys.exit(f"image-wheels: dependency set not closed after {MAX_ROUNDS} rounds: {sorted(missing)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python-version", required=True, help="target Python, e.g. 3.11")
    parser.add_argument("--out", required=True, type=Path, help="directory to (re)write")
    parser.add_argument("--arch", default=platform.machine(), help="target machine, e.g. x86_64, aarch64")
    parser.add_argument("--pyproject", default=Path("pyproject.toml"), type=Path)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        sys.exit(f"image-wheels: --python-version must look like 3.11, not {args.python_version!r}")
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(args.arch, args.arch)

    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".image-wheels.") as tmp:
        wheels = closed_wheel_set(project_requirements(args.pyproject), args.python_version, arch, Path(tmp))
        pins = sorted("{}=={}".format(*wheel_requirements(w)[:2]) for w in wheels.glob("*.whl"))
        (wheels / "requirements.txt").write_text("\n".join(pins) + "\n")
        if out.exists():
            shutil.rmtree(out)
        wheels.rename(out)
    print(f"image-wheels: {len(pins)} wheels for Python {args.python_version} ({arch}) in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
