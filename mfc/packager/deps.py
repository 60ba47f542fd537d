"""A flow's dependencies: where they are declared, and their resolution into an :class:`EnvLock`.

Dependencies come from the flow's project (``requirements.txt`` and ``[project].dependencies`` of
``pyproject.toml`` at :func:`mfc.packager.find_project_root`) and from the flow's decorators, read
from the source without running it: ``@pypi_base(packages=..., python=...)`` on the flow and
``@pypi(packages=...)`` on steps, united into one lock for the flow's image.

Resolution asks pip's resolver for a report (``pip install --dry-run --report``), never installs,
and keeps the dependency closure of the flow's requirements. mfc's own runtime requirements are
constraints of the resolution, so a flow cannot lock a version of them that mfc cannot run with;
they are not in the lock unless the flow needs them (the base image has them). Conflicts with the
base image's other packages are caught by ``pip check`` when the image is built.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfc.exceptions import InvalidFlow, MfcError
from mfc.graph import FlowGraph
from mfc.packager.lockfile import (
    FORMAT_VERSION,
    LOCK_FILE_NAME,
    EnvLock,
    LockCache,
    canonical_name,
    read_lock_file,
    write_atomic,
)

DEFAULT_PYTHON = "3.11"  # the Python of mfc-base (IMAGE_PYTHON_VERSION in .ci/image.mk)
MAX_ROUNDS = 5
_SPEC_START = tuple("<>=!~")


class PipFailed(Exception):
    """pip exited with an error; ``stderr`` is what it printed."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


@dataclass(frozen=True)
class Dependency:
    """One declared requirement: normalised pip text, its canonical name and where it was written."""

    text: str
    name: str
    source: str


@dataclass
class DependencyInputs:
    """Everything a resolution depends on; :attr:`hash` keys the lock cache and ``mfc.lock``."""

    python: str
    requirements: list[Dependency]
    runtime: list[str]
    project_root: Path
    flow_name: str
    python_source: str = "default"

    @property
    def hash(self) -> str:
        return inputs_hash(self.python, [d.text for d in self.requirements], self.runtime)


def inputs_hash(python: str, requirements: list[str], runtime: list[str]) -> str:
    """sha256 of the resolution inputs; the order of requirements does not matter."""
    data = {"format": FORMAT_VERSION, "python": python, "requirements": sorted(set(requirements)),
            "runtime": sorted(set(runtime))}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _packaging() -> tuple[Any, Any]:
    try:
        from packaging.markers import Marker
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors a copy, and resolving needs pip anyway
        # The same classes, as pip's vendored copy: mypy sees two distinct types.
        from pip._vendor.packaging.markers import Marker  # type: ignore[assignment]
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]
    return Requirement, Marker


def normalize_requirement(text: str, source: str) -> Dependency:
    """Parse ``text`` into a :class:`Dependency` with a canonical spelling, or raise naming ``source``."""
    Requirement, _ = _packaging()
    try:
        req = Requirement(text)
    except Exception as exc:
        raise MfcError(f"{source}: invalid requirement {text!r}: {exc}",
                       hint="write it as pip does, e.g. `pandas==2.2.2` or `requests>=2.31`") from None
    if req.url:
        raise MfcError(f"{source}: direct URL requirement {text!r} cannot be locked",
                       hint="publish the package to an index or require it by name and version")
    name = canonical_name(req.name)
    extras = f"[{','.join(sorted(canonical_name(e) for e in req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return Dependency(f"{name}{extras}{req.specifier}{marker}", name, source)


# ------------------------------------------------------------------------------------ declared


def read_requirements_file(path: Path, seen: set[Path] | None = None) -> list[Dependency]:
    """Requirements of a pip requirements file (``-r`` includes followed; index options refused)."""
    seen = seen if seen is not None else set()
    real = path.resolve()
    if real in seen:
        return []
    seen.add(real)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MfcError(f"cannot read {path}: {exc.strerror}") from None
    deps: list[Dependency] = []
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        if line.startswith(("-r ", "--requirement ", "-r", "--requirement=")):
            include = re.sub(r"^(-r|--requirement)[=\s]*", "", line).strip()
            deps += read_requirements_file(path.parent / include, seen)
            continue
        if line.startswith("-"):
            raise MfcError(f"{where}: option {line.split()[0]} is not supported in a locked requirements file",
                           hint="configure indexes with pip (pip config / PIP_INDEX_URL) and list only requirements")
        line = re.sub(r"\s--hash[=\s]\S+", "", line).strip()
        deps.append(normalize_requirement(line, where))
    return deps


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first line number, line)`` with comments stripped and ``\\`` continuations joined."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def read_pyproject(path: Path) -> list[Dependency]:
    """``[project].dependencies`` of ``path``; none for mfc's own pyproject (its image has them)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise MfcError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise MfcError(f"{path}: invalid TOML: {exc}") from None
    project = data.get("project") or {}
    if canonical_name(str(project.get("name", ""))) == "mfc":
        return []
    deps = project.get("dependencies") or []
    if not isinstance(deps, list):
        raise MfcError(f"{path}: [project].dependencies must be a list of requirement strings")
    return [normalize_requirement(str(d), f"{path} [project].dependencies") for d in deps]


ENV_DECORATORS = {"pypi_base": "pypi", "pypi": "pypi", "conda_base": "conda", "conda": "conda"}
"""Decorators declaring a flow's environment, to the ``--environment`` each stands for."""


def env_decorators(graph: FlowGraph) -> list[tuple[Any, str]]:
    """The flow's environment decorators (``@pypi_base``, ``@conda_base`` first) with their labels."""
    specs = [(d, f"@{d.name}") for d in graph.flow_decorators if d.name in ("pypi_base", "conda_base")]
    for node in graph.nodes.values():
        specs += [(d, f"@{d.name} on step {node.name}") for d in node.decorators if d.name in ("pypi", "conda")]
    return specs


def pip_spec(version: str, conda: bool) -> str:
    """A decorator's version as a pip specifier: ``''`` any, a bare version is pinned with ``==``;
    for ``@conda`` a conda spec (``=1.2``, ``1.2.*``, ``>=1,<2``) is translated."""
    version = version.strip()
    if conda:
        if "|" in version or " " in version:
            raise ValueError(f"conda spec {version!r} has no pip equivalent (use e.g. '1.2', '>=1.2,<2')")
        if version.startswith("=") and not version.startswith("=="):
            version = version[1:]
    return version if not version or version.startswith(_SPEC_START) else f"=={version}"


def _declared_packages(deco: Any, label: str, graph: FlowGraph) -> dict[Any, Any]:
    """``packages`` (and ``@conda``'s ``libraries``) of ``deco``, checked to be a literal dict."""
    merged: dict[Any, Any] = {}
    for key in ("libraries", "packages"):
        value = deco.args.get(key, {})
        if not isinstance(value, dict):
            raise InvalidFlow(f"{label}: {key} must be a literal dict like {{'pandas': '2.2.2'}}",
                              graph.file, deco.line)
        merged.update(value)
    return merged


def decorator_requirements(graph: FlowGraph) -> tuple[list[Dependency], str | None, str]:
    """Requirements from ``@pypi_base``/``@pypi`` and ``@conda_base``/``@conda`` (resolved from
    PyPI), the Python they ask for (or None) and where it was asked; two different pins of one
    package raise naming both decorators."""
    deps: list[Dependency] = []
    pins: dict[str, tuple[str, str]] = {}
    python: str | None = None
    python_at = ""
    for deco, label in env_decorators(graph):
        where = f"{label} at {graph.file}:{deco.line}"
        if deco.args.get("disabled") is True:
            continue
        wanted = deco.args.get("python")
        if wanted is not None:
            if not isinstance(wanted, str) or not re.fullmatch(r"3\.\d+(\.\d+)?", wanted):
                raise InvalidFlow(f"{label}: python={wanted!r} cannot be provided: mfc runs Python 3 only; "
                                  "use a version string like '3.11'", graph.file, deco.line)
            wanted = ".".join(wanted.split(".")[:2])
            if python is not None and wanted != python:
                raise InvalidFlow(f"{label} asks for Python {wanted} but {python_at} asks for {python}",
                                  graph.file, deco.line, "one environment serves the whole flow: make them agree")
            python, python_at = wanted, where
        for name, version in _declared_packages(deco, label, graph).items():
            if not isinstance(name, str) or not (version is None or isinstance(version, str)):
                raise InvalidFlow(f"{label}: packages entry {name!r}: {version!r} must map a name to a "
                                  "version string", graph.file, deco.line)
            try:
                spec = pip_spec(version or "", ENV_DECORATORS[deco.name] == "conda")
            except ValueError as exc:
                raise InvalidFlow(f"{label}: {name}: {exc}", graph.file, deco.line) from None
            dep = normalize_requirement(f"{name}{spec}", where)
            if spec.startswith("==") and "," not in spec:
                earlier = pins.get(dep.name)
                if earlier and earlier[0] != spec:
                    raise InvalidFlow(
                        f"{dep.name} is pinned twice: {spec[2:]} by {where} and {earlier[0][2:]} by {earlier[1]}",
                        graph.file, deco.line, "pin one version for the whole flow")
                pins.setdefault(dep.name, (spec, where))
            deps.append(dep)
    return deps, python, python_at


def runtime_requirements() -> list[str]:
    """mfc's own runtime requirements (extras left out), as installed here."""
    import importlib.metadata

    try:
        reqs = importlib.metadata.requires("mfc") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return sorted(r for r in reqs if "extra ==" not in r.replace("extra==", "extra =="))


def collect_inputs(flow_file: str, flow_name: str | None = None, python: str | None = None) -> DependencyInputs:
    """Gather the flow's declared dependencies and target Python (without resolving anything).

    ``python`` is the image's Python: a decorator asking for another one is an error; without it
    the decorators' Python, else :data:`DEFAULT_PYTHON`, is the target.
    """
    from mfc.graph import parse_flow
    from mfc.packager import find_project_root

    graph = parse_flow(flow_file, flow_name)
    root = find_project_root(flow_file)
    deps: list[Dependency] = []
    if (root / "requirements.txt").is_file():
        deps += read_requirements_file(root / "requirements.txt")
    if (root / "pyproject.toml").is_file():
        deps += read_pyproject(root / "pyproject.toml")
    deco_deps, deco_python, python_at = decorator_requirements(graph)
    deps += deco_deps
    if python and deco_python and python != deco_python:
        raise MfcError(f"{python_at} asks for Python {deco_python} but the image has Python {python}",
                       hint=f"use a base image with Python {deco_python} (--base) or change the decorator")
    target = python or deco_python or DEFAULT_PYTHON
    source = "image" if python else (python_at if deco_python else "default")
    unique: dict[str, Dependency] = {}
    for dep in deps:
        unique.setdefault(dep.text, dep)
    return DependencyInputs(target, sorted(unique.values(), key=lambda d: d.text), runtime_requirements(),
                            root, graph.name, source)


# ------------------------------------------------------------------------------------ resolving


def image_arch() -> str:
    """The machine type of images built here (the engine runs on this host)."""
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def host_matches(python: str) -> bool:
    """Whether this interpreter can resolve for ``python`` on Linux as itself (no target flags)."""
    return sys.platform.startswith("linux") and python == f"{sys.version_info[0]}.{sys.version_info[1]}"


def target_flags(python: str) -> list[str]:
    """pip options that select wheels for CPython ``python`` on manylinux (glibc <= 2.35)."""
    arch = image_arch()
    flags = ["--python-version", python, "--implementation", "cp", "--abi", "cp" + python.replace(".", ""),
             "--only-binary=:all:"]
    for minor in range(35, 16, -1):
        flags += ["--platform", f"manylinux_2_{minor}_{arch}"]
    return flags + ["--platform", f"manylinux2014_{arch}"]


def target_environment(python: str) -> dict[str, str]:
    """Marker variables of CPython ``python`` on Linux in an image built here."""
    return {
        "implementation_name": "cpython", "implementation_version": f"{python}.0", "os_name": "posix",
        "platform_machine": image_arch(), "platform_python_implementation": "CPython",
        "platform_release": "", "platform_system": "Linux", "platform_version": "",
        "python_full_version": f"{python}.0", "python_version": python, "sys_platform": "linux",
    }


def _applies(req: Any, env: dict[str, str], extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": extra}) for extra in extras | {""})


def _without_marker(req: Any) -> str:
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def run_pip_report(requirements: list[str], constraints: list[str], python: str) -> dict[str, Any]:
    """pip's installation report for ``requirements`` under ``constraints`` targeting ``python``
    (nothing is installed); raises :class:`PipFailed` when pip fails."""
    with tempfile.TemporaryDirectory(prefix="mfc-lock-") as tmp:
        reqs = Path(tmp, "requirements.txt")
        reqs.write_text("".join(f"{r}\n" for r in requirements), encoding="utf-8")
        cons = Path(tmp, "constraints.txt")
        cons.write_text("".join(f"{c}\n" for c in constraints), encoding="utf-8")
        report = Path(tmp, "report.json")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--no-input", "--report", str(report), "-r", str(reqs),
               "-c", str(cons)]
        if not host_matches(python):
            cmd += ["--target", str(Path(tmp, "target")), *target_flags(python)]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
        except OSError as exc:
            raise MfcError(f"cannot run pip ({sys.executable} -m pip): {exc}") from None
        if result.returncode != 0 or not report.is_file():
            raise PipFailed(result.stderr)
        return json.loads(report.read_text(encoding="utf-8"))


def index_url() -> str:
    """The package index pip resolves from (``PIP_INDEX_URL``, else PyPI)."""
    return os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"


def pip_failure(stderr: str, python: str, sources: dict[str, str] | None = None,
                constraints: dict[str, str] | None = None) -> str:
    """One line saying why pip could not resolve, from its stderr; ``sources`` maps canonical names to
    where they were declared, ``constraints`` to mfc's own requirement on them."""
    sources = sources or {}
    constraints = constraints or {}
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        req = missing.group(1)
        name = canonical_name(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0])
        where = sources.get(name)
        if where and where.startswith("@conda"):
            return (f"@conda libraries not found on PyPI ({index_url()}): {req} (from {where}); "
                    "no conda channel is used, see docs/environments.md")
        origin = f" (from {where})" if where else " (needed by another dependency)"
        return (f"dependency {req}{origin} does not resolve: no matching distribution for Python {python} "
                f"on {index_url()}; check the name and version")
    if "ResolutionImpossible" in stderr or "conflicting dependencies" in stderr:
        lines = [line.strip() for line in stderr.splitlines()]
        head = next((line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: Cannot install")),
                    "the dependencies conflict")
        causes: list[str] = []
        if "The conflict is caused by:" in lines:
            for line in lines[lines.index("The conflict is caused by:") + 1:]:
                if not line or line.startswith("To fix"):
                    break
                causes.append(line)
        named = re.match(r"Cannot install (.*?) because", head)
        for part in re.split(r", | and ", named.group(1)) if named else []:
            name = canonical_name(re.split(r"[<>=!~;\[ ]", part.strip(), maxsplit=1)[0])
            if name in sources:
                causes.append(f"{part.strip()} comes from {sources[name]}")
            if name in constraints:
                causes.append(f"mfc itself requires {constraints[name]}")
        detail = f": {'; '.join(causes)}" if causes else ""
        return f"dependencies conflict for Python {python}: {head.rstrip('.')}{detail}"
    errors = [line.removeprefix("ERROR: ").strip() for line in stderr.splitlines() if line.startswith("ERROR:")]
    last = errors[-1] if errors else (stderr.strip().splitlines() or ["pip failed without a message"])[-1]
    return f"dependency resolution failed for Python {python}: {last}"


def resolve(inputs: DependencyInputs,
            report: Callable[[list[str], list[str], str], dict[str, Any]] = run_pip_report) -> EnvLock:
    """Resolve ``inputs`` into exact pins: the closure of the flow's requirements.

    pip evaluates environment markers for the interpreter running it; when that is not the target
    Python, requirements that apply only to the target are added and the resolution repeated.
    """
    if not inputs.requirements:
        return EnvLock.create(inputs.python, [], inputs.hash)
    Requirement, _ = _packaging()
    cross = not host_matches(inputs.python)
    env = target_environment(inputs.python)
    roots = [Requirement(d.text) for d in inputs.requirements]
    runtime = [Requirement(r) for r in inputs.runtime]
    sources = {d.name: d.source for d in inputs.requirements}
    extra: dict[str, Any] = {}
    for _round in range(MAX_ROUNDS):
        wanted = [r for r in roots if not cross or _applies(r, env, set())]
        lines = [_without_marker(r) if cross else str(r) for r in wanted] + [str(r) for r in extra.values()]
        constraints = [_constraint(r) for r in runtime if _applies(r, env, set())]
        try:
            data = report(lines, constraints, inputs.python)
        except PipFailed as exc:
            mfc_needs = {canonical_name(r.name): _constraint(r) for r in runtime}
            raise MfcError(pip_failure(exc.stderr, inputs.python, sources, mfc_needs)) from None
        if not cross:
            env = dict(data.get("environment") or env)
        found = {canonical_name(item["metadata"]["name"]): item["metadata"] for item in data.get("install", [])}
        pins, missing = _closure(roots, found, env, Requirement)
        if not missing or not cross:
            return EnvLock.create(inputs.python, pins, inputs.hash)
        extra.update({canonical_name(r.name): Requirement(_without_marker(r)) for r in missing})
    raise MfcError(f"dependency resolution for Python {inputs.python} did not settle after {MAX_ROUNDS} rounds")


def _constraint(req: Any) -> str:
    """``req`` as a pip constraint: no extras (pip refuses them there) and no marker (already applied)."""
    return f"{req.name}{req.specifier}"


def _closure(roots: list[Any], found: dict[str, dict[str, Any]], env: dict[str, str],
             Requirement: Any) -> tuple[dict[str, str], list[Any]]:
    """Pins reachable from ``roots`` in the report's packages, and requirements missing from it."""
    extras: dict[str, set[str]] = {}
    todo: list[tuple[str, set[str]]] = []
    missing: list[Any] = []
    for root in roots:
        if _applies(root, env, set()):
            todo.append((canonical_name(root.name), {canonical_name(e) for e in root.extras}))
    while todo:
        name, wanted = todo.pop()
        meta = found.get(name)
        if meta is None:
            continue
        known = extras.get(name)
        if known is not None and wanted <= known:
            continue
        extras[name] = (known or set()) | wanted
        for text in meta.get("requires_dist") or []:
            req = Requirement(text)
            if not _applies(req, env, extras[name]):
                continue
            child = canonical_name(req.name)
            if child not in found or not req.specifier.contains(found[child]["version"], prereleases=True):
                missing.append(req)
                continue
            todo.append((child, {canonical_name(e) for e in req.extras}))
    pins = {name: found[name]["version"] for name in extras}
    return pins, missing


# ------------------------------------------------------------------------------------ locking


@dataclass
class LockResult:
    """A flow's lock and where it came from: ``mfc.lock``, ``cache``, ``pip`` or ``empty``."""

    lock: EnvLock
    inputs: DependencyInputs
    source: str
    lock_file: Path
    stale_lock_file: bool = False
    written: bool = False
    notes: list[str] = field(default_factory=list)


def lock_flow(flow_file: str, flow_name: str | None = None, python: str | None = None, *, write: bool = False,
              refresh: bool = False, cache: LockCache | None = None,
              inputs: DependencyInputs | None = None) -> LockResult:
    """The flow's lock, resolving only when neither ``mfc.lock`` nor the cache has one for these inputs.

    ``refresh`` resolves again regardless (newer releases may be picked); ``write`` (re)writes
    ``mfc.lock`` at the project root when its content would change.
    """
    inputs = inputs or collect_inputs(flow_file, flow_name, python)
    digest = inputs.hash
    lock_file = inputs.project_root / LOCK_FILE_NAME
    recorded = read_lock_file(lock_file)
    cache = cache or LockCache()
    stale = recorded is not None and recorded.python == inputs.python and recorded.inputs_hash != digest
    if not inputs.requirements:
        lock, source = EnvLock.create(inputs.python, [], digest), "empty"
    elif recorded is not None and recorded.inputs_hash == digest and not refresh:
        lock, source = recorded, "mfc.lock"
    else:
        cached = None if refresh else cache.get(digest)
        if cached is not None:
            lock, source = cached, "cache"
        else:
            lock, source = resolve(inputs), "pip"
            cache.put(lock)
    result = LockResult(lock, inputs, source, lock_file, stale)
    if stale:
        result.notes.append(f"{lock_file} is out of date with the flow's dependencies; "
                            "run `mfc lock --write` to update it")
    if write and (recorded is None or recorded.file_text() != lock.file_text()):
        write_atomic(lock_file, lock.file_text())
        result.written, result.stale_lock_file = True, False
        result.notes = []
    return result
