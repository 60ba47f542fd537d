"""Isolated virtualenvs for local runs of flows declaring ``@pypi``/``@conda`` (and their ``_base``).

One env per lock id under :func:`env_root` (``$MFC_ENV_CACHE``, else ``<mfc cache>/envs``), built
with uv into a temporary directory and renamed into place; a ``.ready`` marker makes reuse one
existence check. The env holds the lock's pins and mfc's runtime dependencies at the host's
versions; mfc itself is importable through a ``.pth`` naming a directory that links only to the
host's ``mfc`` package, never the host's site-packages.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mfc.exceptions import MfcError
from mfc.graph import FlowGraph
from mfc.packager.lockfile import EnvLock, cache_dir, canonical_name

READY = ".ready"


def env_root() -> Path:
    """Where environments are kept: ``$MFC_ENV_CACHE``, else ``<mfc cache>/envs``."""
    explicit = os.environ.get("MFC_ENV_CACHE")
    return Path(explicit) if explicit else cache_dir() / "envs"


def declares_environment(graph: FlowGraph) -> bool:
    """Whether the flow has an (enabled) ``@pypi``/``@conda`` decorator of its own."""
    from mfc.packager.deps import env_decorators

    return any(deco.args.get("disabled") is not True for deco, _ in env_decorators(graph))


def runtime_pins(skip: set[str]) -> list[str]:
    """mfc's runtime requirements pinned to the versions installed here (``skip``: names the lock pins)."""
    from mfc.packager.deps import _packaging, runtime_requirements

    Requirement, _ = _packaging()
    pins = []
    for text in runtime_requirements():
        name = canonical_name(Requirement(text).name)
        if name in skip:
            continue
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(text)
    return pins


def env_python(env: Path) -> Path:
    return env / "bin" / "python"


def source_key(graph: FlowGraph) -> str:
    """A hash of everything the flow's lock is computed from (its file, the project's dependency
    files, mfc's version): a ready env found under it is reused without computing the lock."""
    import hashlib

    from mfc.packager import find_project_root
    from mfc.version import __version__

    digest = hashlib.sha256(f"{__version__}\0{os.path.abspath(graph.file)}\0{graph.name}\0".encode())
    root = find_project_root(graph.file)
    for path in (Path(graph.file), root / "requirements.txt", root / "pyproject.toml", root / "mfc.lock"):
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"-")
        digest.update(b"\0")
    return digest.hexdigest()


def known_env(key: str) -> Path | None:
    """The interpreter of the ready env recorded for source ``key``, if any."""
    try:
        lock_id = (env_root() / "by-source" / key).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    env = env_root() / lock_id
    return env_python(env) if lock_id and (env / READY).is_file() else None


def remember_env(key: str, lock_id: str) -> None:
    from mfc.packager.lockfile import write_atomic

    write_atomic(env_root() / "by-source" / key, lock_id)


def ensure_env(lock: EnvLock, python_source: str, say: Callable[[str], None]) -> Path:
    """The interpreter of ``lock``'s environment, building it first when it is not ready."""
    env = env_root() / lock.id
    if (env / READY).is_file():
        return env_python(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f".{lock.id}.lock", "w") as guard:
        # A concurrent run builds it and this one then reuses it. The kernel releases the lock of
        # a run that dies, however it dies: a killed build never blocks the next one.
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (env / READY).is_file():
            _discard_unfinished(env)
            _build(env, lock, python_source, say)
            # once more: a killed build's uv may still have been exiting (and writing) the first time
            _discard_leftovers(env)
    return env_python(env)


def _discard_unfinished(env: Path) -> None:
    """Remove what killed builds of ``env`` left (their temporary directories; an env directory
    without its marker). Only called holding the env's lock: no live build owns them."""
    _discard_leftovers(env)
    if env.exists():
        shutil.rmtree(env, ignore_errors=True)


def _discard_leftovers(env: Path) -> None:
    """Remove the temporary directories of killed builds of ``env`` (holding the env's lock)."""
    for leftover in env.parent.glob(f".{env.name[:12]}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _uv() -> str:
    import uv

    return str(uv.find_uv_bin())


def _run_uv(args: list[str], what: str) -> None:
    from mfc.runner.lifeline import parent_death_preexec

    # uv dies with this process: a killed run does not leave it installing on
    result = subprocess.run([_uv(), *args], capture_output=True, text=True,
                            env={**os.environ, "UV_NO_PROGRESS": "1"}, preexec_fn=parent_death_preexec())
    if result.returncode != 0:
        errors = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        raise MfcError(f"{what}: {errors[-1] if errors else 'uv failed'}")


def _build(env: Path, lock: EnvLock, python_source: str, say: Callable[[str], None]) -> None:
    started = time.monotonic()
    label = f"environment {lock.id[:12]}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{lock.id[:12]}-", dir=env.parent))
    try:
        say(f"{label}: creating (python {lock.python})")
        host = f"{sys.version_info[0]}.{sys.version_info[1]}"
        interpreter = sys.executable if lock.python == host else lock.python
        try:
            _run_uv(["venv", "--quiet", "--relocatable", "--python", interpreter, str(tmp)],
                    f"Python {lock.python} (asked by {python_source}) cannot be provided")
        except MfcError as exc:
            raise MfcError(str(exc), hint="install that Python, or change python= in the decorator") from None
        requirements = [f"{name}=={version}" for name, version in lock.pins]
        requirements += runtime_pins({name for name, _ in lock.pins})
        say(f"{label}: installing {len(requirements)} packages")
        reqs = tmp / "requirements.txt"
        reqs.write_text("".join(f"{r}\n" for r in requirements), encoding="utf-8")
        _run_uv(["pip", "install", "--quiet", "--python", str(env_python(tmp)), "-r", str(reqs)],
                f"{label}: installing its packages failed")
        _link_mfc(tmp, env)
        (tmp / READY).write_text(lock.text, encoding="utf-8")
        os.rename(tmp, env)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"{label}: ready in {time.monotonic() - started:.1f}s")


def _link_mfc(tmp: Path, final: Path) -> None:
    """Make the host's mfc package importable in the env at ``final`` (built at ``tmp``)."""
    import mfc

    (tmp / "mfc-link").mkdir()
    (tmp / "mfc-link" / "mfc").symlink_to(Path(mfc.__file__).resolve().parent)
    (site,) = tmp.glob("lib/python*/site-packages")
    (site / "mfc-host.pth").write_text(f"{final / 'mfc-link'}\n", encoding="utf-8")
